package agenttrusttest

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Unauthenticated requests are refused before their body is read: 24 POSTs
// of 8 MiB with a wrong key leave 24 bodiless entries in the log and do not
// grow the heap by anything near their 192 MiB.
func TestUnauthenticatedBodiesAreNotRead(t *testing.T) {
	srv := NewTestServer(t)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	big := bytes.Repeat([]byte("x"), 8<<20)

	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	for i := 0; i < 24; i++ {
		key := "sk_wrong"
		if i%2 == 0 {
			key = "" // no key at all
		}
		req, _ := http.NewRequest("POST", srv.URL()+"/api/v1/agents", bytes.NewReader(big))
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		res, err := hc.Do(req)
		if err != nil {
			// The server may close the connection while the client is
			// still sending the body it refused to read.
			continue
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		require.Equal(t, http.StatusUnauthorized, res.StatusCode, "request %d: status %d, want 401", i, res.StatusCode)
	}
	// The handler records the request before it answers; wait for any
	// handler still finishing after a cut connection.
	require.Eventually(t, func() bool { return len(srv.Requests()) >= 24 }, 5*time.Second, 10*time.Millisecond,
		"requests still being logged")
	reqs := srv.Requests()
	require.Len(t, reqs, 24, "%d requests logged, want 24", len(reqs))
	for i, r := range reqs {
		require.Len(t, r.Body, 0, "request %d: %d body bytes logged for an unauthenticated request", i, len(r.Body))
	}
	big = nil
	waitRSTAvoidance(t)
	after := heap()
	assert.False(t, after > before && after-before > 16<<20, "heap grew by %d MiB after 24 refused 8 MiB POSTs", (after-before)>>20)
}

// The log keeps the most recent requests within its count and byte bounds.
func TestRequestLogIsBounded(t *testing.T) {
	srv := NewTestServer(t, WithRequestLogLimit(5, 1000))
	c := newClient(t, srv)
	for i := 0; i < 12; i++ {
		c.gw("GET", "/api/v1/agents", "").must(t, 200)
	}
	reqs := srv.Requests()
	require.Len(t, reqs, 5, "%d requests kept, want 5", len(reqs))
	for i, r := range reqs {
		want := fmt.Sprintf("req-%d", 8+i)
		assert.Equal(t, want, r.RequestID, "entry %d is %s, want %s (the most recent, oldest first)", i, r.RequestID, want)
	}

	// 300-byte bodies (recorded before validation, so their content does
	// not matter): at most three fit in 1000 bytes.
	srv.ClearRequests()
	body := `{"name": "` + strings.Repeat("n", 288) + `"}`
	require.Len(t, body, 300, "body of %d bytes", len(body))
	for i := 0; i < 4; i++ {
		c.gw("POST", "/api/v1/agents", body)
	}
	reqs = srv.Requests()
	total := 0
	for _, r := range reqs {
		total += len(r.Body)
	}
	assert.Len(t, reqs, 3, "%d requests with %d body bytes kept, want 3 with 900", len(reqs), total)
	assert.EqualValues(t, 900, total, "%d requests with %d body bytes kept, want 3 with 900", len(reqs), total)
}

// A client that sends its body slowly is cut off after the read timeout.
func TestSlowBodyIsCutOff(t *testing.T) {
	srv := NewTestServer(t, WithTimeouts(Timeouts{Read: 300 * time.Millisecond}))
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL(), "http://"))
	require.NoError(t, err)
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/v1/agents HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n", srv.APIKey())
	start := time.Now()
	// One byte every 50 ms would take 50 s; the server must end it first.
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := conn.Read(buf); err != nil {
				done <- err
				return
			}
		}
	}()
	for {
		select {
		case <-done:
			d := time.Since(start)
			assert.LessOrEqual(t, d, 3*time.Second, "the connection lasted %v, want about the 300 ms read timeout", d)
			return
		case <-time.After(50 * time.Millisecond):
			_, _ = conn.Write([]byte("x"))
		}
		require.LessOrEqual(t, time.Since(start), 10*time.Second, "a 1-byte-per-50ms body held the connection for 10 s")
	}
}

// waitRSTAvoidance waits (up to 3 s) for net/http to finish closing the
// connections whose request body the server left unread: it keeps each one
// for 500 ms before closing it (RST avoidance), which goleak would see.
func waitRSTAvoidance(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	assert.Eventually(t, func() bool {
		return !strings.Contains(string(buf[:runtime.Stack(buf, true)]), "closeWriteAndWait")
	}, 3*time.Second, 20*time.Millisecond, "connections still closing after 3 s")
}
