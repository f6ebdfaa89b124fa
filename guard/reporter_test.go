package guard

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/internal/allocs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var tsRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$`)

func TestReportWire(t *testing.T) {
	gw := newGateway(t)
	fc := newFakeClock()
	g := mustNew(t, newClient(t, gw.srv.URL), WithSessionID("sess-1"), withClock(fc.clock()))
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.FixedZone("x", 3600))
	g.Report(ToolStart("read_file"))
	g.Report(ToolEnd("read_file", 1500*time.Microsecond))
	pathErr := &fs.PathError{Op: "open", Path: "/secret/path", Err: fs.ErrNotExist}
	ev := ToolError("read_file", -time.Second, pathErr)
	ev.Time = at
	g.Report(ev)
	require.NoError(t, g.Flush(context.Background()))
	batches := gw.batchBodies()
	require.Len(t, batches, 1, "batches %v", batches)
	require.Equal(t, "agent-1", batches[0]["agent_id"], "batches %v", batches)
	require.Equal(t, "sess-1", batches[0]["session_id"], "batches %v", batches)
	evs := gw.events()
	require.Len(t, evs, 3, "events %v", evs)
	start, end, fail := evs[0], evs[1], evs[2]
	assert.Equal(t, "tool_start", start["event_type"], "tool_start %v", start)
	assert.Equal(t, "read_file", start["tool_name"], "tool_start %v", start)
	assert.Len(t, start, 3, "tool_start %v", start)
	assert.Equal(t, "tool_end", end["event_type"], "tool_end %v", end)
	assert.Equal(t, 1.0, end["duration_ms"], "tool_end %v", end)
	assert.Equal(t, true, end["success"], "tool_end %v", end)
	assert.Len(t, end, 5, "tool_end %v", end)
	assert.Equal(t, "tool_error", fail["event_type"], "tool_error %v", fail)
	assert.Equal(t, false, fail["success"], "tool_error %v", fail)
	assert.Equal(t, 0.0, fail["duration_ms"], "tool_error %v", fail)
	assert.Equal(t, "*fs.PathError", fail["error_type"], "tool_error %v", fail)
	assert.Equal(t, "2026-03-01T09:00:00.000000+00:00", fail["timestamp"], "tool_error %v", fail)
	for _, e := range evs {
		ts, _ := e["timestamp"].(string)
		assert.True(t, tsRE.MatchString(ts), "timestamp %q", ts)
	}
	for _, raw := range gw.raw {
		require.False(t, regexp.MustCompile(`secret/path|file does not exist`).MatchString(raw), "error text on the wire: %s", raw)
	}
}

func TestReportInvalidEventsDropped(t *testing.T) {
	gw := newGateway(t)
	g := mustNew(t, newClient(t, gw.srv.URL))
	g.Report(Event{Type: "tool_progress", Tool: "x"})
	g.Report(ToolStart(""))
	s := g.Stats()
	require.EqualValues(t, 2, s.Reported, "stats %+v", s)
	require.EqualValues(t, 2, s.Dropped, "stats %+v", s)
	require.EqualValues(t, 0, s.Pending, "stats %+v", s)
	err := g.Close(context.Background())
	require.NoError(t, err, "Close = %v, %d requests", err, gw.reportCalls())
	require.EqualValues(t, 0, gw.reportCalls(), "Close = %v, %d requests", err, gw.reportCalls())
}

func TestReporterTriggers(t *testing.T) {
	gw := newGateway(t)
	fc := newFakeClock()
	g := mustNew(t, newClient(t, gw.srv.URL), WithBatchSize(10), withClock(fc.clock()))
	for i := 0; i < 3; i++ {
		g.Report(ToolStart(fmt.Sprint("t", i)))
	}
	settle(t, g)
	n := gw.reportCalls()
	require.EqualValues(t, 0, n, "%d batches before the size or time trigger", n)
	fc.tick <- time.Now() // interval tick: everything pending, below batch size
	require.Eventually(t, func() bool { return len(gw.batchBodies()) == 1 }, waitFor, pollEvery, "tick batch")
	for i := 0; i < 25; i++ {
		g.Report(ToolStart(fmt.Sprint("s", i)))
	}
	// The size trigger sends whole batches of 10: two requests of 10, or one
	// of 20 when both were waiting by the time the goroutine looked.
	require.Eventually(t, func() bool { return g.Stats().Sent == 23 }, waitFor, pollEvery, "size batches")
	settle(t, g)
	s := g.Stats()
	require.EqualValues(t, 23, s.Sent, "stats %+v; the 5 left over must wait for the tick", s)
	require.EqualValues(t, 5, s.Pending, "stats %+v; the 5 left over must wait for the tick", s)
	sizeReqs := gw.reportCalls() - 1
	fc.tick <- time.Now()
	require.Eventually(t, func() bool { return len(gw.batchBodies()) == sizeReqs+2 }, waitFor, pollEvery, "second tick batch")
	sizes := []int{}
	for _, b := range gw.batchBodies() {
		sizes = append(sizes, len(b["events"].([]any)))
	}
	got := fmt.Sprint(sizes)
	require.Contains(t, []string{"[3 10 10 5]", "[3 20 5]"}, got, "batch sizes %v", sizes)
	// Order is kept across batches.
	for i, e := range gw.events()[3:] {
		require.Equal(t, fmt.Sprint("s", i), e["tool_name"], "event %d is %v", i, e["tool_name"])
	}
	require.Eventually(t, func() bool { return g.Stats().Sent == 28 }, waitFor, pollEvery, "all sent")
	s = g.Stats()
	require.EqualValues(t, 0, s.Pending, "stats %+v", s)
	require.EqualValues(t, 0, s.Dropped, "stats %+v", s)
	fc.tick <- time.Now() // nothing pending: nothing is posted
	settle(t, g)
	n = gw.reportCalls()
	require.Equal(t, len(sizes), n, "%d requests after an idle tick", n)
}

func TestReporterRealTicker(t *testing.T) {
	gw := newGateway(t)
	g := mustNew(t, newClient(t, gw.srv.URL), WithFlushInterval(20*time.Millisecond))
	g.Report(ToolStart("a"))
	require.Eventually(t, func() bool { return len(gw.events()) == 1 }, waitFor, pollEvery, "interval flush")
}

// blockFirst makes the gateway hold its first telemetry request until the
// returned func is called (at the latest when the test ends).
func blockFirst(t *testing.T, gw *gateway, answer func(w http.ResponseWriter) bool) (release func()) {
	ch := make(chan struct{})
	release = sync.OnceFunc(func() { close(ch) })
	t.Cleanup(release)
	gw.setReport(func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n != 1 {
			return false
		}
		select {
		case <-ch:
		case <-r.Context().Done():
			return true
		}
		return answer(w)
	})
	return release
}

// TestReporterOverflow: the capacity bounds the events waiting; the batch
// in flight is pending but outside it.
func TestReporterOverflow(t *testing.T) {
	gw := newGateway(t)
	release := blockFirst(t, gw, func(http.ResponseWriter) bool { return false })
	fc := newFakeClock()
	g := mustNew(t, newClient(t, gw.srv.URL), WithBatchSize(5), WithQueueCapacity(8), withClock(fc.clock()))
	for i := 0; i < 5; i++ {
		g.Report(ToolStart("a"))
	}
	require.Eventually(t, func() bool { return gw.reportCalls() == 1 }, waitFor, pollEvery, "first batch in flight")
	for i := 0; i < 9; i++ { // 8 wait beside the 5 in flight, 1 is dropped
		g.Report(ToolStart("b"))
	}
	s := g.Stats()
	checkInvariant(t, s)
	require.EqualValues(t, 14, s.Reported, "stats %+v", s)
	require.EqualValues(t, 1, s.Dropped, "stats %+v", s)
	require.EqualValues(t, 13, s.Pending, "stats %+v", s)
	release()
	require.NoError(t, g.Close(context.Background()))
	s = g.Stats()
	checkInvariant(t, s)
	require.EqualValues(t, 13, s.Sent, "stats %+v, %d events", s, len(gw.events()))
	require.EqualValues(t, 1, s.Dropped, "stats %+v, %d events", s, len(gw.events()))
	require.EqualValues(t, 0, s.Pending, "stats %+v, %d events", s, len(gw.events()))
	require.Len(t, gw.events(), 13, "stats %+v, %d events", s, len(gw.events()))
}

// TestReporterRequeueWithinCapacity: a failed batch goes back at the head of
// a queue that filled up while it was out; the newest events that no longer
// fit are dropped, and the oldest are delivered, in order.
func TestReporterRequeueWithinCapacity(t *testing.T) {
	gw := newGateway(t)
	release := blockFirst(t, gw, func(w http.ResponseWriter) bool {
		writeJSON(w, 503, `{"error":"down"}`)
		return true
	})
	fc := newFakeClock()
	g := mustNew(t, newClient(t, gw.srv.URL), WithBatchSize(5), WithQueueCapacity(8), withClock(fc.clock()))
	for i := 0; i < 13; i++ { // 5 in flight, 8 waiting
		g.Report(ToolStart(fmt.Sprint("e", i)))
		if i == 4 {
			require.Eventually(t, func() bool { return gw.reportCalls() == 1 }, waitFor, pollEvery, "first batch in flight")
		}
	}
	done := make(chan error, 1)
	go func() { done <- g.Flush(context.Background()) }()
	require.Eventually(t, func() bool {
		g.rep.mu.Lock()
		defer g.rep.mu.Unlock()
		return len(g.rep.waiters) == 1
	}, waitFor, pollEvery, "Flush waiting")
	release()
	err := <-done
	var de *DeliveryError
	var ae *agenttrust.AgentTrustError
	require.ErrorAs(t, err, &de, "Flush = %v, want the 5 newest dropped for the 503", err)
	require.EqualValues(t, 5, de.Undelivered, "Flush = %v, want the 5 newest dropped for the 503", err)
	require.ErrorAs(t, err, &ae, "Flush = %v, want the 5 newest dropped for the 503", err)
	require.EqualValues(t, 503, ae.Status, "Flush = %v, want the 5 newest dropped for the 503", err)
	var names []any
	for _, e := range gw.events() {
		names = append(names, e["tool_name"])
	}
	require.Equal(t, "[e0 e1 e2 e3 e4 e5 e6 e7]", fmt.Sprint(names), "delivered %v", names)
	s := g.Stats()
	checkInvariant(t, s)
	require.EqualValues(t, 8, s.Sent, "stats %+v", s)
	require.EqualValues(t, 5, s.Dropped, "stats %+v", s)
	require.EqualValues(t, 1, s.FailedBatches, "stats %+v", s)
	require.EqualValues(t, 0, s.Pending, "stats %+v", s)
}

func TestReporterRetryAndRequeue(t *testing.T) {
	gw := newGateway(t)
	gw.setReport(func(w http.ResponseWriter, r *http.Request, n int) bool {
		switch n {
		case 1:
			writeJSON(w, 503, `{"error":"down"}`)
			return true
		case 2:
			w.Header().Set("Retry-After", "3")
			writeJSON(w, 429, `{"error":"slow"}`)
			return true
		}
		return false
	})
	fc := newFakeClock()
	g := mustNew(t, newClient(t, gw.srv.URL), WithBatchSize(2), WithFlushInterval(2*time.Second), withClock(fc.clock()))
	g.Report(ToolStart("a"))
	g.Report(ToolStart("b"))
	g.Report(ToolStart("c"))
	require.NoError(t, g.Flush(context.Background()))
	var names []any
	for _, e := range gw.events() {
		names = append(names, e["tool_name"])
	}
	require.Equal(t, "[a b c]", fmt.Sprint(names), "delivered %v; want each event once, in order", names)
	// 1 s backoff after the 503; Retry-After 3 s capped at the 2 s interval.
	d := fc.delays()
	require.Equal(t, "[1s 2s]", fmt.Sprint(d), "backoff delays %v", d)
	s := g.Stats()
	require.EqualValues(t, 2, s.FailedBatches, "stats %+v", s)
	require.EqualValues(t, 3, s.Sent, "stats %+v", s)
	require.EqualValues(t, 0, s.Dropped, "stats %+v", s)
}

func TestReporterBackoffDoubling(t *testing.T) {
	r := &reporter{interval: 5 * time.Second}
	var got []time.Duration
	for i := 1; i <= 5; i++ {
		got = append(got, r.backoff(i, errors.New("x")))
	}
	require.Equal(t, "[1s 2s 4s 5s 5s]", fmt.Sprint(got), "backoff %v", got)
}

func TestReporterGivesUp(t *testing.T) {
	t.Run("attempt limit", func(t *testing.T) {
		gw := newGateway(t)
		gw.setReport(func(w http.ResponseWriter, r *http.Request, n int) bool {
			writeJSON(w, 500, `{"error":"down"}`)
			return true
		})
		fc := newFakeClock()
		g := mustNew(t, newClient(t, gw.srv.URL), WithSendAttempts(3), withClock(fc.clock()))
		g.Report(ToolStart("a"))
		g.Report(ToolStart("b"))
		err := g.Flush(context.Background())
		var de *DeliveryError
		require.ErrorAs(t, err, &de, "Flush = %v", err)
		require.EqualValues(t, 2, de.Undelivered, "Flush = %v", err)
		var ae *agenttrust.AgentTrustError
		require.ErrorAs(t, err, &ae, "cause not reachable: %v", err)
		require.EqualValues(t, 500, ae.Status, "cause not reachable: %v", err)
		n := gw.reportCalls()
		require.EqualValues(t, 3, n, "%d attempts, want 3", n)
		// A backoff before each retry, none after the last attempt.
		d := fc.delays()
		require.Equal(t, "[1s 2s]", fmt.Sprint(d), "backoff delays %v", d)
		s := g.Stats()
		require.EqualValues(t, 2, s.Dropped, "stats %+v", s)
		require.EqualValues(t, 3, s.FailedBatches, "stats %+v", s)
		require.EqualValues(t, 0, s.Pending, "stats %+v", s)
	})
	t.Run("non-retryable", func(t *testing.T) {
		gw := newGateway(t)
		gw.setReport(func(w http.ResponseWriter, r *http.Request, n int) bool {
			writeJSON(w, 401, `{"message":"bad key"}`)
			return true
		})
		g := mustNew(t, newClient(t, gw.srv.URL), withClock(newFakeClock().clock()))
		g.Report(ToolStart("a"))
		err := g.Flush(context.Background())
		de := (*DeliveryError)(nil)
		require.ErrorAs(t, err, &de, "Flush = %v", err)
		require.EqualValues(t, 1, de.Undelivered, "Flush = %v", err)
		require.ErrorIs(t, err, agenttrust.ErrAuthentication, "Flush = %v", err)
		n := gw.reportCalls()
		require.EqualValues(t, 1, n, "%d attempts for a 401", n)
	})
}

func TestFlushContext(t *testing.T) {
	gw := newGateway(t)
	release := make(chan struct{})
	gw.setReport(func(w http.ResponseWriter, r *http.Request, n int) bool {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return false
	})
	g := mustNew(t, newClient(t, gw.srv.URL), withClock(newFakeClock().clock()))
	g.Report(ToolStart("a"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, g.Flush(ctx), context.DeadlineExceeded, "Flush =")
	s := g.Stats()
	require.EqualValues(t, 1, s.Pending, "event not kept: %+v", s)
	close(release)
	require.NoError(t, g.Flush(context.Background()))
	require.Len(t, gw.events(), 1, "event not delivered")
	require.NoError(t, g.Flush(context.Background()), "empty Flush")
	g.FlushAsync() // nothing pending: harmless
	require.NoError(t, g.Close(context.Background()))
	require.ErrorIs(t, g.Flush(context.Background()), ErrClosed, "Flush after Close =")
}

func TestFlushAsync(t *testing.T) {
	gw := newGateway(t)
	g := mustNew(t, newClient(t, gw.srv.URL), withClock(newFakeClock().clock()))
	g.Report(ToolStart("a"))
	g.FlushAsync()
	require.Eventually(t, func() bool { return len(gw.events()) == 1 }, waitFor, pollEvery, "async flush")
}

func TestCloseExpiredContext(t *testing.T) {
	gw := newGateway(t)
	gw.setReport(func(w http.ResponseWriter, r *http.Request, n int) bool {
		<-r.Context().Done() // hangs until the client gives up
		return true
	})
	g, err := New(newClient(t, gw.srv.URL), "agent-1", WithBatchSize(2), withClock(newFakeClock().clock()))
	require.NoError(t, err)
	for i := 0; i < 5; i++ {
		g.Report(ToolStart("a"))
	}
	require.Eventually(t, func() bool { return gw.reportCalls() == 1 }, waitFor, pollEvery, "a batch in flight")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = g.Close(ctx)
	var de *DeliveryError
	require.ErrorAs(t, err, &de, "Close = %v", err)
	require.EqualValues(t, 5, de.Undelivered, "Close = %v", err)
	require.ErrorIs(t, err, context.DeadlineExceeded, "Close = %v", err)
	el := time.Since(start)
	require.LessOrEqual(t, el, 2*time.Second, "Close took %v", el)
	s := g.Stats()
	checkInvariant(t, s)
	require.EqualValues(t, 0, s.Pending, "stats %+v", s)
	require.EqualValues(t, 5, s.Dropped, "stats %+v", s)
	select {
	case <-g.rep.exited:
	default:
		t.Fatal("reporter goroutine still running after Close")
	}
	err2 := g.Close(context.Background())
	require.Same(t, err, err2, "second Close = %v, want the first result %v", err2, err)
}

func TestReportAfterClose(t *testing.T) {
	gw := newGateway(t)
	g := mustNew(t, newClient(t, gw.srv.URL))
	g.Report(ToolStart("a"))
	require.NoError(t, g.Close(context.Background()))
	g.Report(ToolStart("late"))
	g.Report(ToolStart("late"))
	s := g.Stats()
	checkInvariant(t, s)
	require.EqualValues(t, 3, s.Reported, "stats %+v", s)
	require.EqualValues(t, 1, s.Sent, "stats %+v", s)
	require.EqualValues(t, 2, s.Dropped, "stats %+v", s)
	require.EqualValues(t, 0, s.Pending, "stats %+v", s)
	require.NoError(t, g.Close(context.Background()), "second Close")
}

func TestCloseWithoutReports(t *testing.T) {
	gw := newGateway(t)
	g := mustNew(t, newClient(t, gw.srv.URL))
	_, err := g.Check(context.Background(), "t", "")
	require.NoError(t, err)
	require.False(t, g.rep.started, "a check-only Guard started the reporter goroutine")
	require.NoError(t, g.Close(context.Background()))
}

func TestReportWhileClosing(t *testing.T) {
	gw := newGateway(t)
	g, err := New(newClient(t, gw.srv.URL), "agent-1", WithBatchSize(50), WithQueueCapacity(2000))
	require.NoError(t, err)
	var wg sync.WaitGroup
	var stop atomic.Bool
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; !stop.Load(); j++ {
				g.Report(ToolStart(fmt.Sprintf("w%d-%d", i, j)))
				if j%64 == 0 {
					checkInvariant(t, g.Stats())
					// Pacing, not synchronisation: the producers leave the
					// reporter and Close room to run between bursts.
					time.Sleep(100 * time.Microsecond)
				}
			}
		}(i)
	}
	// Close once the producers have filled more than a queue's worth, so that
	// it races reports still coming in.
	require.Eventually(t, func() bool { return g.Stats().Reported > 2000 }, waitFor, pollEvery, "producers running")
	cerr := g.Close(context.Background())
	stop.Store(true)
	wg.Wait()
	require.NoError(t, cerr, "Close")
	s := g.Stats()
	checkInvariant(t, s)
	require.EqualValues(t, 0, s.Pending, "stats %+v, %d arrived", s, len(gw.events()))
	require.Equal(t, uint64(len(gw.events())), s.Sent, "stats %+v, %d arrived", s, len(gw.events()))
	require.NotEqualValues(t, 0, s.Sent, "stats %+v, %d arrived", s, len(gw.events()))
	require.Greater(t, s.Reported, s.Sent, "stats %+v, %d arrived", s, len(gw.events()))
}

// TestTelemetryExactlyOnce: 10 000 reports from 50 goroutines while the
// gateway fails every third batch. After Close every event was delivered
// exactly once or counted as dropped. The queue holds 4000 so that the
// drain takes several requests even with backlog batches of 500.
func TestTelemetryExactlyOnce(t *testing.T) {
	gw := newGateway(t)
	gw.setReport(func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n%3 == 0 {
			writeJSON(w, 503, `{"error":"flaky"}`)
			return true
		}
		return false
	})
	fc := newFakeClock()
	g, err := New(newClient(t, gw.srv.URL), "agent-1", WithQueueCapacity(4000), withClock(fc.clock()))
	require.NoError(t, err)
	const workers, each = 50, 200
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < each; j++ {
				g.Report(ToolEnd(fmt.Sprintf("tool-%d-%d", i, j), time.Millisecond))
			}
		}(i)
	}
	wg.Wait()
	if err := g.Close(context.Background()); err != nil {
		var de *DeliveryError
		require.ErrorAs(t, err, &de, "Close = %v", err)
	}
	s := g.Stats()
	checkInvariant(t, s)
	require.EqualValues(t, workers*each, s.Reported, "stats %+v", s)
	require.EqualValues(t, 0, s.Pending, "stats %+v", s)
	seen := map[string]int{}
	for _, e := range gw.events() {
		seen[e["tool_name"].(string)]++
	}
	for name, n := range seen {
		require.EqualValues(t, 1, n, "%s arrived %d times", name, n)
	}
	require.Equal(t, s.Sent, uint64(len(seen)), "%d distinct events arrived, Sent = %d", len(seen), s.Sent)
	require.NotEqualValues(t, 0, s.FailedBatches, "test did not exercise failures: %+v", s)
	require.NotEqualValues(t, 0, s.Sent, "test did not exercise failures: %+v", s)
	t.Logf("stats %+v", s)
}

// TestReporterBacklogBatches: while a request is in flight, events pile up;
// the next requests carry them in whole batches of BatchSize, up to 500
// events each, in order. A quiet agent's first batch is still 10.
func TestReporterBacklogBatches(t *testing.T) {
	gw := newGateway(t)
	release := make(chan struct{})
	gw.setReport(func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n == 1 {
			<-release
		}
		return false
	})
	fc := newFakeClock()
	g := mustNew(t, newClient(t, gw.srv.URL), withClock(fc.clock())) // batches of 10, queue of 1000
	for i := 0; i < 10; i++ {
		g.Report(ToolStart(fmt.Sprint("e", i)))
	}
	require.Eventually(t, func() bool { return gw.reportCalls() == 1 }, waitFor, pollEvery, "first batch in flight")
	for i := 10; i < 1000; i++ {
		g.Report(ToolStart(fmt.Sprint("e", i)))
	}
	close(release)
	require.Eventually(t, func() bool { return g.Stats().Sent == 1000 }, waitFor, pollEvery, "backlog sent")
	sizes := []int{}
	for _, b := range gw.batchBodies() {
		sizes = append(sizes, len(b["events"].([]any)))
	}
	require.Equal(t, "[10 500 490]", fmt.Sprint(sizes), "batch sizes %v, want [10 500 490]", sizes)
	for i, e := range gw.events() {
		require.Equal(t, fmt.Sprint("e", i), e["tool_name"], "event %d is %v", i, e["tool_name"])
	}
	s := g.Stats()
	require.EqualValues(t, 0, s.Dropped, "stats %+v", s)
	require.EqualValues(t, 0, s.Pending, "stats %+v", s)
	require.EqualValues(t, 0, s.FailedBatches, "stats %+v", s)
}

// TestReporterDrainBatches: a tick, Flush or Close sends everything pending,
// whole batches or not, in requests of at most the backlog bound.
func TestReporterDrainBatches(t *testing.T) {
	gw := newGateway(t)
	fc := newFakeClock()
	g := mustNew(t, newClient(t, gw.srv.URL), WithBatchSize(7), WithQueueCapacity(2000), withClock(fc.clock()))
	release := make(chan struct{})
	gw.setReport(func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n == 1 {
			<-release
		}
		return false
	})
	for i := 0; i < 7; i++ {
		g.Report(ToolStart("a"))
	}
	require.Eventually(t, func() bool { return gw.reportCalls() == 1 }, waitFor, pollEvery, "first batch in flight")
	for i := 0; i < 1100; i++ {
		g.Report(ToolStart("b"))
	}
	// Flush asks for everything: 1100 = 497 + 497 + 106 (497 being the
	// whole batches of 7 that fit in 500).
	done := make(chan error, 1)
	go func() { done <- g.Flush(context.Background()) }()
	require.Eventually(t, func() bool {
		g.rep.mu.Lock()
		defer g.rep.mu.Unlock()
		return g.rep.flushTo > 0
	}, waitFor, pollEvery, "flush requested")
	close(release)
	require.NoError(t, <-done)
	sizes := []int{}
	for _, b := range gw.batchBodies() {
		sizes = append(sizes, len(b["events"].([]any)))
	}
	require.Equal(t, "[7 497 497 106]", fmt.Sprint(sizes), "batch sizes %v", sizes)
}

func TestReporterMaxBatch(t *testing.T) {
	c := newClient(t, closedURL(t))
	for _, tc := range []struct{ batch, want int }{
		{1, 500}, {7, 497}, {10, 500}, {250, 500}, {300, 300}, {500, 500}, {600, 600},
	} {
		g, err := New(c, "agent-1", WithBatchSize(tc.batch), WithQueueCapacity(1000))
		require.NoError(t, err)
		assert.Equal(t, tc.want, g.rep.maxBatch, "batch size %d: at most %d events a request, want %d", tc.batch, g.rep.maxBatch, tc.want)
	}
}

// onceClock fires the first backoff at once and never fires a later one, so
// any wait after the second attempt lasts until Close's deadline.
func onceClock() clock {
	var n atomic.Int32
	return clock{
		now:    time.Now,
		ticker: func(time.Duration) (<-chan time.Time, func()) { return make(chan time.Time), func() {} },
		after: func(time.Duration) (<-chan time.Time, func()) {
			c := make(chan time.Time, 1)
			if n.Add(1) == 1 {
				c <- time.Now()
			}
			return c, func() {}
		},
	}
}

// TestCloseReportsSendError: a batch that fails its last attempt during
// Close is not followed by another backoff, and Close returns the send
// error, not its context's, although that context is short.
func TestCloseReportsSendError(t *testing.T) {
	gw := newGateway(t)
	gw.setReport(func(w http.ResponseWriter, r *http.Request, n int) bool {
		writeJSON(w, 503, `{"error":"down"}`)
		return true
	})
	g := mustNew(t, newClient(t, gw.srv.URL), WithSendAttempts(2), withClock(onceClock()))
	g.Report(ToolStart("a"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	err := g.Close(ctx)
	var de *DeliveryError
	var ae *agenttrust.AgentTrustError
	require.ErrorAs(t, err, &de, "Close = %v, want 1 undelivered for the 503", err)
	require.EqualValues(t, 1, de.Undelivered, "Close = %v, want 1 undelivered for the 503", err)
	require.ErrorAs(t, err, &ae, "Close = %v, want 1 undelivered for the 503", err)
	require.EqualValues(t, 503, ae.Status, "Close = %v, want 1 undelivered for the 503", err)
	require.NotErrorIs(t, err, context.DeadlineExceeded, "Close = %v: the send failed, not the context", err)
	el := time.Since(start)
	require.LessOrEqual(t, el, time.Second, "Close took %v: it waited after the last attempt", el)
	n := gw.reportCalls()
	require.EqualValues(t, 2, n, "%d attempts, want 2", n)
}

// TestCloseRealBackoff: with the real clock and two attempts, Close spends
// one backoff (1 s), not two (1 s + 2 s).
func TestCloseRealBackoff(t *testing.T) {
	gw := newGateway(t)
	gw.setReport(func(w http.ResponseWriter, r *http.Request, n int) bool {
		writeJSON(w, 503, `{"error":"down"}`)
		return true
	})
	g := mustNew(t, newClient(t, gw.srv.URL), WithSendAttempts(2))
	g.Report(ToolStart("a"))
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := g.Close(ctx)
	el := time.Since(start)
	var ae *agenttrust.AgentTrustError
	require.ErrorAs(t, err, &ae, "Close = %v after %v, want the 503", err, el)
	require.EqualValues(t, 503, ae.Status, "Close = %v after %v, want the 503", err, el)
	require.NotErrorIs(t, err, context.DeadlineExceeded, "Close = %v after %v, want the 503", err, el)
	require.GreaterOrEqual(t, el, 900*time.Millisecond, "Close took %v, want about one 1 s backoff", el)
	require.LessOrEqual(t, el, 2*time.Second, "Close took %v, want about one 1 s backoff", el)
}

// TestCloseDeadlineDuringRetry: when Close's context ends while a failed
// batch waits for its retry, the batch is lost to the deadline: Close
// reports ctx's error.
func TestCloseDeadlineDuringRetry(t *testing.T) {
	gw := newGateway(t)
	gw.setReport(func(w http.ResponseWriter, r *http.Request, n int) bool {
		writeJSON(w, 503, `{"error":"down"}`)
		return true
	})
	g := mustNew(t, newClient(t, gw.srv.URL)) // real clock: the first backoff is 1 s
	g.Report(ToolStart("a"))
	g.Report(ToolStart("b"))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := g.Close(ctx)
	var de *DeliveryError
	require.ErrorAs(t, err, &de, "Close = %v", err)
	require.EqualValues(t, 2, de.Undelivered, "Close = %v", err)
	require.ErrorIs(t, err, context.DeadlineExceeded, "Close = %v", err)
	s := g.Stats()
	require.EqualValues(t, 2, s.Dropped, "stats %+v", s)
	require.EqualValues(t, 0, s.Pending, "stats %+v", s)
	require.LessOrEqual(t, s.FailedBatches, uint64(1), "stats %+v", s)
}

// stallingHandler is a slog.Handler that holds the log record of a dropped
// batch until release is closed, as a slow log sink would; entered is closed
// when it starts waiting.
type stallingHandler struct {
	entered chan<- struct{}
	release <-chan struct{}
}

func (h stallingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h stallingHandler) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "dropped" && a.Value.Int64() > 0 {
			close(h.entered)
			<-h.release
			return false
		}
		return true
	})
	return nil
}
func (h stallingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h stallingHandler) WithGroup(string) slog.Handler      { return h }

// TestCloseKeepsSendErrorAfterDeadline: the batch is dropped by its failed
// send, and Close's context ends before the goroutine is done (here: a slow
// log sink). Nothing was lost to the deadline, so Close reports the send
// error.
func TestCloseKeepsSendErrorAfterDeadline(t *testing.T) {
	gw := newGateway(t)
	gw.setReport(func(w http.ResponseWriter, r *http.Request, n int) bool {
		writeJSON(w, 503, `{"error":"down"}`)
		return true
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	entered := make(chan struct{})
	g := mustNew(t, newClient(t, gw.srv.URL), WithSendAttempts(1),
		WithLogger(slog.New(stallingHandler{entered: entered, release: ctx.Done()})), withClock(newFakeClock().clock()))
	g.Report(ToolStart("a"))
	res := make(chan error, 1)
	go func() { res <- g.Close(ctx) }()
	<-entered // the batch is dropped; the goroutine is still logging it
	cancel()
	err := <-res
	var de *DeliveryError
	var ae *agenttrust.AgentTrustError
	require.ErrorAs(t, err, &de, "Close = %v, want 1 undelivered for the 503", err)
	require.EqualValues(t, 1, de.Undelivered, "Close = %v, want 1 undelivered for the 503", err)
	require.ErrorAs(t, err, &ae, "Close = %v, want 1 undelivered for the 503", err)
	require.EqualValues(t, 503, ae.Status, "Close = %v, want 1 undelivered for the 503", err)
	require.NotErrorIs(t, err, context.Canceled, "Close = %v, want 1 undelivered for the 503", err)
}

// TestReportAllocFree: once the queue's backing array has grown, Report
// allocates nothing, whether it stamps the time or not.
func TestReportAllocFree(t *testing.T) {
	gw := newGateway(t)
	g := mustNew(t, newClient(t, gw.srv.URL), WithBatchSize(1000), WithQueueCapacity(1000), withClock(newFakeClock().clock()))
	empty := func() {
		g.rep.mu.Lock()
		g.rep.dropLocked(g.rep.queue, nil)
		g.rep.queue = g.rep.queue[:0]
		g.rep.mu.Unlock()
	}
	// Before each count: empty what the last count queued, grow the queue
	// staying below a batch (a full one would be sent), and empty it.
	warm := func() {
		empty()
		for i := 0; i < 999; i++ {
			g.Report(ToolStart("warm"))
		}
		empty()
	}
	stamped := ToolEnd("read_file", time.Millisecond)
	timed := stamped
	timed.Time = time.Now()
	for _, ev := range []Event{stamped, timed} {
		n := allocs.Least(400, warm, func() { g.Report(ev) })
		assert.EqualValues(t, 0, n, "Report allocates %v times per call", n)
	}
	require.EqualValues(t, 0, gw.reportCalls(), "%d sends during the test", gw.reportCalls())
}

// TestCloseCountsOnlyItsDrain: Close's error counts the events its drain
// lost; events dropped before (a refused batch, an overflow) show only in
// Stats.
func TestCloseCountsOnlyItsDrain(t *testing.T) {
	gw := newGateway(t)
	gw.setReport(func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n == 1 {
			writeJSON(w, 400, `{"error":"bad batch"}`)
			return true
		}
		<-r.Context().Done() // later requests hang until the client gives up
		return true
	})
	g := mustNew(t, newClient(t, gw.srv.URL), WithBatchSize(2), WithQueueCapacity(4), withClock(newFakeClock().clock()))
	g.Report(ToolStart("a"))
	g.Report(ToolStart("b"))
	require.Eventually(t, func() bool { return g.Stats().Dropped == 2 }, waitFor, pollEvery, "first batch refused")
	g.Report(ToolStart("c"))
	g.Report(ToolStart("d"))
	require.Eventually(t, func() bool { return gw.reportCalls() == 2 }, waitFor, pollEvery, "second batch in flight")
	for _, name := range []string{"e", "f", "g", "h", "i"} { // i finds the queue full
		g.Report(ToolStart(name))
	}
	s := g.Stats()
	require.EqualValues(t, 3, s.Dropped, "before Close: %+v", s)
	require.EqualValues(t, 6, s.Pending, "before Close: %+v", s)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := g.Close(ctx)
	var de *DeliveryError
	require.ErrorAs(t, err, &de, "Close = %v, want the 6 events its drain lost", err)
	require.EqualValues(t, 6, de.Undelivered, "Close = %v, want the 6 events its drain lost", err)
	require.ErrorIs(t, err, context.DeadlineExceeded, "Close = %v, want the 6 events its drain lost", err)
	s = g.Stats()
	checkInvariant(t, s)
	require.EqualValues(t, 9, s.Reported, "stats %+v", s)
	require.EqualValues(t, 9, s.Dropped, "stats %+v", s)
	require.EqualValues(t, 0, s.Sent, "stats %+v", s)
	require.EqualValues(t, 0, s.Pending, "stats %+v", s)
}
