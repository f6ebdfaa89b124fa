package guard

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
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
	if err != nil || a.Status != "approved" || a.DecidedBy != "alice" {
		t.Fatalf("WaitForApproval = %+v, %v", a, err)
	}
	if p := path.Load(); p != "/mcp/approvals/apr%2F1" {
		t.Fatalf("path %v", p)
	}
	if n := polls.Load(); n < 4 {
		t.Fatalf("%d polls", n)
	}
}

func TestWaitForApprovalEnds(t *testing.T) {
	pending := func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, `{"status": "pending"}`) }
	t.Run("ctx", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(pending))
		defer srv.Close()
		g := mustNew(t, newClient(t, srv.URL))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		if _, err := g.WaitForApproval(ctx, "a", WithPollInterval(5*time.Millisecond)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("denied", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, `{"status": "denied"}`)
		}))
		defer srv.Close()
		g := mustNew(t, newClient(t, srv.URL))
		if a, err := g.WaitForApproval(context.Background(), "a"); err != nil || a.Status != "denied" {
			t.Fatalf("= %+v, %v", a, err)
		}
	})
	t.Run("404 ends the wait", func(t *testing.T) {
		var n atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			writeJSON(w, 404, `{"error": "no such approval"}`)
		}))
		defer srv.Close()
		g := mustNew(t, newClient(t, srv.URL))
		if _, err := g.WaitForApproval(context.Background(), "a", WithPollInterval(time.Millisecond)); !errors.Is(err, agenttrust.ErrNotFound) || n.Load() != 1 {
			t.Fatalf("err = %v after %d polls", err, n.Load())
		}
	})
	t.Run("validation", func(t *testing.T) {
		g := mustNew(t, newClient(t, closedURL(t)))
		if _, err := g.WaitForApproval(context.Background(), ""); !errors.Is(err, agenttrust.ErrValidation) {
			t.Fatalf("empty id: %v", err)
		}
		if _, err := g.WaitForApproval(context.Background(), "a", WithPollInterval(0)); !errors.Is(err, agenttrust.ErrValidation) {
			t.Fatalf("zero interval: %v", err)
		}
	})
}

// BenchmarkGuardReport measures Report on the caller's goroutine. The queue
// is emptied (untimed) before it reaches a batch, so no send runs and the
// queue stays at its usual size.
func BenchmarkGuardReport(b *testing.B) {
	gw := newGateway(b)
	g, err := New(newClient(b, gw.srv.URL), "agent-1",
		WithQueueCapacity(1000), WithBatchSize(1000), WithFlushInterval(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
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
	if s := g.Stats(); s.Reported != uint64(b.N) || gw.reportCalls() != 0 {
		b.Fatalf("stats %+v, %d sends", s, gw.reportCalls())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = g.Close(ctx) // drop, do not send, the benchmark's events
}

func BenchmarkGuardCheck(b *testing.B) {
	gw := newGateway(b)
	g, err := New(newClient(b, gw.srv.URL), "agent-1")
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close(context.Background())
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := g.Check(ctx, "read_file", "[5 chars]"); err != nil {
			b.Fatal(err)
		}
	}
}
