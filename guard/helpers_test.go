package guard

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testKey = "sk_live_secretkey1234"

// fastRetry keeps the client's own retries of 5xx and 429 quick.
var fastRetry = agenttrust.WithRetryPolicy(agenttrust.RetryPolicy{
	MaxRetries: 2, InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, MaxRetryAfter: 5 * time.Millisecond,
})

func newClient(t testing.TB, url string) *agenttrust.Client {
	t.Helper()
	c, err := agenttrust.New(agenttrust.WithBaseURL(url), agenttrust.WithAPIKey(testKey), fastRetry)
	require.NoError(t, err)
	return c
}

// gateway is a small loopback gateway for the guard's two endpoints. It
// records every body as a generic map.
type gateway struct {
	srv *httptest.Server

	mu      sync.Mutex
	checks  []map[string]any
	batches []map[string]any
	raw     []string // every request body, as text
	// check answers a check; nil allows everything.
	check func(w http.ResponseWriter, r *http.Request, body map[string]any)
	// report may answer a telemetry request itself (returning true), e.g.
	// with a failure; the batch is recorded only when it returns false.
	report  func(w http.ResponseWriter, r *http.Request, n int) bool
	nReport int
}

func newGateway(t testing.TB) *gateway {
	g := &gateway{}
	g.srv = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *gateway) serve(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var body map[string]any
	_ = json.Unmarshal(b, &body)
	g.mu.Lock()
	g.raw = append(g.raw, string(b))
	g.mu.Unlock()
	switch r.URL.Path {
	case "/api/v1/agenttrust/check":
		g.mu.Lock()
		g.checks = append(g.checks, body)
		fn := g.check
		g.mu.Unlock()
		if fn != nil {
			fn(w, r, body)
			return
		}
		writeJSON(w, 200, `{"allowed": true, "check_id": "chk-1", "guard_tier": "fast"}`)
	case "/api/v1/telemetry/report":
		g.mu.Lock()
		g.nReport++
		n, fn := g.nReport, g.report
		g.mu.Unlock()
		if fn != nil && fn(w, r, n) {
			return
		}
		g.mu.Lock()
		g.batches = append(g.batches, body)
		g.mu.Unlock()
		writeJSON(w, 200, `{"accepted": true}`)
	default:
		writeJSON(w, 404, `{"error": "no route"}`)
	}
}

func (g *gateway) setCheck(fn func(w http.ResponseWriter, r *http.Request, body map[string]any)) {
	g.mu.Lock()
	g.check = fn
	g.mu.Unlock()
}

func (g *gateway) setReport(fn func(w http.ResponseWriter, r *http.Request, n int) bool) {
	g.mu.Lock()
	g.report = fn
	g.mu.Unlock()
}

func (g *gateway) checkBodies() []map[string]any {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]map[string]any(nil), g.checks...)
}

func (g *gateway) batchBodies() []map[string]any {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]map[string]any(nil), g.batches...)
}

func (g *gateway) reportCalls() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.nReport
}

// events returns every event of every recorded batch, in order.
func (g *gateway) events() []map[string]any {
	var out []map[string]any
	for _, b := range g.batchBodies() {
		evs, _ := b["events"].([]any)
		for _, e := range evs {
			out = append(out, e.(map[string]any))
		}
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// closedURL returns the URL of a loopback port nobody listens on.
func closedURL(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	u := "http://" + l.Addr().String()
	l.Close()
	return u
}

// fakeClock drives the reporter's ticker by hand and makes backoff instant,
// recording the delays asked for.
type fakeClock struct {
	tick chan time.Time
	mu   sync.Mutex
	wait []time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{tick: make(chan time.Time)} }

func (f *fakeClock) clock() clock {
	return clock{
		now:    time.Now,
		ticker: func(time.Duration) (<-chan time.Time, func()) { return f.tick, func() {} },
		after: func(d time.Duration) (<-chan time.Time, func()) {
			f.mu.Lock()
			f.wait = append(f.wait, d)
			f.mu.Unlock()
			c := make(chan time.Time, 1)
			c <- time.Now()
			return c, func() {}
		},
	}
}

func (f *fakeClock) delays() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.wait...)
}

// settle returns once the reporter goroutine has handled everything queued
// before the call: it wakes the goroutine three times through its wake
// channel (capacity 1). The third send can only complete after the goroutine
// took the second, that is after it finished the pass the first one started,
// with any send that pass made. A wake-up only makes it look at the queue.
func settle(t testing.TB, g *Guard) {
	t.Helper()
	timeout := time.NewTimer(waitFor)
	defer timeout.Stop()
	for i := 0; i < 3; i++ {
		select {
		case g.rep.wake <- struct{}{}:
		case <-timeout.C:
			require.FailNow(t, "the reporter goroutine stopped taking wake-ups")
		}
	}
}

func mustNew(t testing.TB, c *agenttrust.Client, opts ...Option) *Guard {
	t.Helper()
	g, err := New(c, "agent-1", opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = g.Close(context.Background()) })
	return g
}

func checkInvariant(t testing.TB, s Stats) {
	t.Helper()
	require.Equal(t, s.Sent+s.Dropped+s.Pending, s.Reported, "invariant broken: %+v", s)
}

// waitFor and pollEvery bound every require.Eventually in the package.
const (
	waitFor   = 5 * time.Second
	pollEvery = time.Millisecond
)
