package guard

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/stretchr/testify/require"
)

func TestWaitForApproval(t *testing.T) {
	var polls atomic.Int32
	var path atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path.Store(r.URL.EscapedPath())
		switch polls.Add(1) {
		case 1:
			writeJSON(w, 200, `{"id": "apr/1", "status": "pending"}`)
		case 2:
			writeJSON(w, 500, `{"error": "blip"}`) // unavailable: retried at the next poll
		case 3:
			writeJSON(w, 200, `{"id": "apr/1"}`) // status absent means pending
		default:
			writeJSON(w, 200, `{"id": "apr/1", "status": "approved", "decided_by": "alice"}`)
		}
	}))
	defer srv.Close()
	g := mustNew(t, newClient(t, srv.URL))
	a, err := g.WaitForApproval(context.Background(), "apr/1", WithPollInterval(time.Millisecond))
	require.NoError(t, err, "WaitForApproval = %+v, %v", a, err)
	require.EqualValues(t, "approved", a.Status, "WaitForApproval = %+v, %v", a, err)
	require.Equal(t, "alice", a.DecidedBy, "WaitForApproval = %+v, %v", a, err)
	p := path.Load()
	require.Equal(t, "/mcp/approvals/apr%2F1", p, "path %v", p)
	n := polls.Load()
	require.GreaterOrEqual(t, n, int32(4), "%d polls", n)
}

func TestWaitForApprovalEnds(t *testing.T) {
	pending := func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, `{"status": "pending"}`) }
	t.Run("ctx", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(pending))
		defer srv.Close()
		g := mustNew(t, newClient(t, srv.URL))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		_, err := g.WaitForApproval(ctx, "a", WithPollInterval(5*time.Millisecond))
		require.ErrorIs(t, err, context.DeadlineExceeded, "err = %v", err)
	})
	t.Run("denied", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, `{"status": "denied"}`)
		}))
		defer srv.Close()
		g := mustNew(t, newClient(t, srv.URL))
		a, err := g.WaitForApproval(context.Background(), "a")
		require.NoError(t, err, "= %+v, %v", a, err)
		require.EqualValues(t, "denied", a.Status, "= %+v, %v", a, err)
	})
	t.Run("404 ends the wait", func(t *testing.T) {
		var n atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			writeJSON(w, 404, `{"error": "no such approval"}`)
		}))
		defer srv.Close()
		g := mustNew(t, newClient(t, srv.URL))
		_, err := g.WaitForApproval(context.Background(), "a", WithPollInterval(time.Millisecond))
		require.ErrorIs(t, err, agenttrust.ErrNotFound, "err = %v after %d polls", err, n.Load())
		require.EqualValues(t, 1, n.Load(), "err = %v after %d polls", err, n.Load())
	})
	t.Run("validation", func(t *testing.T) {
		g := mustNew(t, newClient(t, closedURL(t)))
		_, err := g.WaitForApproval(context.Background(), "")
		require.ErrorIs(t, err, agenttrust.ErrValidation, "empty id: %v", err)
		_, err = g.WaitForApproval(context.Background(), "a", WithPollInterval(0))
		require.ErrorIs(t, err, agenttrust.ErrValidation, "zero interval: %v", err)
	})
}

// BenchmarkGuardReport measures Report on the caller's goroutine. The queue
// is emptied (untimed) before it reaches a batch, so no send runs and the
// queue stays at its usual size.
func BenchmarkGuardReport(b *testing.B) {
	gw := newGateway(b)
	g, err := New(newClient(b, gw.srv.URL), "agent-1",
		WithQueueCapacity(1000), WithBatchSize(1000), WithFlushInterval(time.Hour))
	require.NoError(b, err)
	ev := ToolEnd("read_file", time.Millisecond)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g.Report(ev)
		if i%999 == 998 {
			b.StopTimer()
			g.rep.mu.Lock()
			g.rep.dropLocked(g.rep.queue, nil)
			g.rep.queue = g.rep.queue[:0]
			g.rep.mu.Unlock()
			b.StartTimer()
		}
	}
	b.StopTimer()
	s := g.Stats()
	require.Equal(b, uint64(b.N), s.Reported, "stats %+v, %d sends", s, gw.reportCalls())
	require.EqualValues(b, 0, gw.reportCalls(), "stats %+v, %d sends", s, gw.reportCalls())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = g.Close(ctx) // drop, do not send, the benchmark's events
}

func BenchmarkGuardCheck(b *testing.B) {
	gw := newGateway(b)
	g, err := New(newClient(b, gw.srv.URL), "agent-1")
	require.NoError(b, err)
	defer g.Close(context.Background())
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, err := g.Check(ctx, "read_file", "[5 chars]")
		if err != nil {
			b.Fatal(err)
		}
	}
}
