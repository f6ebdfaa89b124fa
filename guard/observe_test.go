package guard

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// guardRecorder records the guard's hooks.
type guardRecorder struct {
	mu        sync.Mutex
	checks    []string
	results   []agenttrust.CheckResult
	infos     []agenttrust.CheckInfo
	nested    []string // operations started under a check's context
	telemetry []agenttrust.TelemetryInfo
}

type checkKey struct{}

func (r *guardRecorder) observer() agenttrust.Option {
	return agenttrust.WithObserver(&agenttrust.Observer{
		CheckStart: func(ctx context.Context, c agenttrust.CheckInfo) context.Context {
			return context.WithValue(ctx, checkKey{}, c.Tool)
		},
		RequestStart: func(ctx context.Context, req agenttrust.RequestInfo) context.Context {
			if tool, ok := ctx.Value(checkKey{}).(string); ok {
				r.mu.Lock()
				r.nested = append(r.nested, tool+">"+req.Operation)
				r.mu.Unlock()
			}
			return ctx
		},
		CheckDone: func(ctx context.Context, c agenttrust.CheckInfo, res agenttrust.CheckResult) {
			r.mu.Lock()
			defer r.mu.Unlock()
			if ctx.Value(checkKey{}) != c.Tool {
				r.checks = append(r.checks, "CheckDone without CheckStart's context")
			}
			r.infos = append(r.infos, c)
			r.results = append(r.results, res)
			r.checks = append(r.checks, fmt.Sprintf("%s %s %q", c.Tool, res.Outcome, res.ErrorClass))
		},
		Telemetry: func(t agenttrust.TelemetryInfo) {
			r.mu.Lock()
			r.telemetry = append(r.telemetry, t)
			r.mu.Unlock()
		},
	})
}

func (r *guardRecorder) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.checks...)
}

func TestObserveCheckOutcomes(t *testing.T) {
	srv := agenttrusttest.NewTestServer(t, agenttrusttest.WithSplitListeners())
	srv.DenyTool("delete_file", "no deletes")
	srv.RequireElevation("send_email")
	agentID := srv.CreateAgent("obs")
	rec := &guardRecorder{}
	c, err := agenttrust.New(agenttrust.WithBaseURL(srv.URL()), agenttrust.WithAuthURL(srv.AuthURL()),
		agenttrust.WithAuditURL(srv.AuditURL()), agenttrust.WithAPIKey(srv.APIKey()), fastRetry, rec.observer())
	require.NoError(t, err)
	ctx := context.Background()

	g, err := New(c, agentID)
	require.NoError(t, err)
	defer g.Close(ctx)
	open, err := New(c, agentID, WithFailOpen(true), WithBlockOnDeny(false))
	require.NoError(t, err)
	defer open.Close(ctx)

	_, err = g.Check(ctx, "read_file", "[5 chars]")
	require.NoError(t, err)
	_, err = g.Check(ctx, "delete_file", "")
	require.ErrorAs(t, err, new(*DeniedError), err)
	_, err = g.Check(ctx, "send_email", "")
	require.ErrorAs(t, err, new(*ElevationRequiredError), err)
	// Without BlockOnDeny a denial is a Decision, still a denial.
	d, err := open.Check(ctx, "delete_file", "")
	require.NoError(t, err, fmt.Sprint(d, err))
	require.False(t, d.Allowed, fmt.Sprint(d, err))
	d, err = open.Check(ctx, "send_email", "")
	require.NoError(t, err, fmt.Sprint(d, err))
	require.True(t, d.ElevationRequired, fmt.Sprint(d, err))
	srv.InjectFault("POST /api/v1/agenttrust/check", agenttrusttest.Fault{Status: 503})
	_, err = g.Check(ctx, "read_file", "")
	require.ErrorAs(t, err, new(*UnavailableError), err)
	d, err = open.Check(ctx, "read_file", "")
	require.NoError(t, err, fmt.Sprint(d, err))
	require.True(t, d.FailedOpen, fmt.Sprint(d, err))
	srv.ClearFaults()
	c.SetAPIKey("wrong-key-123")
	_, err = g.Check(ctx, "read_file", "")
	require.ErrorIs(t, err, agenttrust.ErrAuthentication, err)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = g.Check(cctx, "read_file", "")
	require.ErrorIs(t, err, context.Canceled) // canceled before any I/O: not a check
	_, err = g.Check(ctx, "", "")
	require.Error(t, err, "empty tool accepted") // invalid: not a check

	require.Equal(t, []string{
		`read_file allowed ""`,
		`delete_file denied ""`,
		`send_email elevation ""`,
		`delete_file denied ""`,
		`send_email elevation ""`,
		`read_file unavailable "503"`,
		`read_file failed_open "503"`,
		`read_file error "401"`,
	}, rec.lines())
	rec.mu.Lock()
	defer rec.mu.Unlock()
	r := rec.results[1]
	assert.NotEqual(t, "", r.CheckID, "denial result lacks id, tier or duration: %+v", r)
	assert.NotEqual(t, "", r.Tier, "denial result lacks id, tier or duration: %+v", r)
	assert.Greater(t, r.Duration, time.Duration(0), "denial result lacks id, tier or duration: %+v", r)
	r = rec.results[0]
	assert.NotEqual(t, "", r.CheckID, "allowed result lacks id or tier: %+v", r)
	assert.NotEqual(t, "", r.Tier, "allowed result lacks id or tier: %+v", r)
	i := rec.infos[0]
	assert.Equal(t, agentID, i.AgentID, "CheckInfo = %+v", i)
	assert.Equal(t, "read_file", i.Tool, "CheckInfo = %+v", i)
	assert.Equal(t, "[5 chars]", i.Summary, "CheckInfo = %+v", i)
	// Every check's API call ran under the check's context (three attempts
	// each for the two 503 checks).
	assert.Equal(t, "read_file>actions.check,delete_file>actions.check,send_email>actions.check,"+
		"delete_file>actions.check,send_email>actions.check,read_file>actions.check,read_file>actions.check,read_file>actions.check",
		strings.Join(rec.nested, ","), "nested operations")
}

func TestObserveCheckSummaryTruncated(t *testing.T) {
	gw := newGateway(t)
	rec := &guardRecorder{}
	c, err := agenttrust.New(agenttrust.WithBaseURL(gw.srv.URL), agenttrust.WithAPIKey(testKey), rec.observer())
	require.NoError(t, err)
	g := mustNew(t, c)
	long := strings.Repeat("é", 300)
	_, err = g.Check(context.Background(), "read_file", long)
	require.NoError(t, err)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	got := rec.infos[0].Summary
	assert.Equal(t, strings.Repeat("é", 200), got, "summary of %d runes, want the 200 sent", len([]rune(got)))
}

// pendingSum adds up the PendingDelta of every telemetry change.
func (r *guardRecorder) pendingSum() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, t := range r.telemetry {
		n += t.PendingDelta
	}
	return n
}

func (r *guardRecorder) telemetryLines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, t := range r.telemetry {
		out = append(out, fmt.Sprintf("%s %d %+d %s %s", t.Kind, t.Events, t.PendingDelta, t.Reason, t.ErrorClass))
	}
	return out
}

func TestObserveTelemetry(t *testing.T) {
	gw := newGateway(t)
	rec := &guardRecorder{}
	c, err := agenttrust.New(agenttrust.WithBaseURL(gw.srv.URL), agenttrust.WithAPIKey(testKey), rec.observer(),
		agenttrust.WithRetryPolicy(agenttrust.RetryPolicy{}))
	require.NoError(t, err)
	clk := newFakeClock()
	g := mustNew(t, c, withClock(clk.clock()), WithBatchSize(2), WithQueueCapacity(3), WithSendAttempts(2))
	ctx := context.Background()

	// Two events go out as one batch.
	g.Report(ToolEnd("a", time.Millisecond))
	g.Report(ToolEnd("b", time.Millisecond))
	require.NoError(t, g.Flush(ctx))
	// An invalid event is dropped at once.
	g.Report(Event{Type: "bogus", Tool: "x"})
	// The gateway fails every send: the batch is tried twice, then dropped.
	gw.setReport(func(w http.ResponseWriter, _ *http.Request, _ int) bool {
		writeJSON(w, 503, `{"error":"down"}`)
		return true
	})
	g.Report(ToolEnd("c", time.Millisecond))
	g.Report(ToolEnd("d", time.Millisecond))
	var de *DeliveryError
	err = g.Flush(ctx)
	require.ErrorAs(t, err, &de, "Flush = %v", err)
	require.EqualValues(t, 2, de.Undelivered, "Flush = %v", err)
	n := rec.pendingSum()
	require.EqualValues(t, 0, n, "pending sum %d, stats %+v", n, g.Stats())
	require.EqualValues(t, 0, g.Stats().Pending, "pending sum %d, stats %+v", n, g.Stats())
	// A full queue drops the overflow; then Close drops a late event.
	gw.setReport(func(w http.ResponseWriter, _ *http.Request, _ int) bool {
		writeJSON(w, 503, `{"error":"down"}`)
		return true
	})
	g2 := mustNew(t, c, withClock(clk.clock()), WithBatchSize(3), WithQueueCapacity(3), WithFlushInterval(time.Hour))
	for _, tool := range []string{"e", "f"} {
		g2.Report(ToolEnd(tool, time.Millisecond))
	}
	require.EqualValues(t, 2, rec.pendingSum(), "pending sum with two queued events")
	g2.Report(ToolEnd("g", time.Millisecond)) // the third fills a batch: it is sent (and fails)
	abort, cancel := context.WithCancel(ctx)
	cancel()
	_ = g2.Close(abort)
	g2.Report(ToolEnd("late", time.Millisecond))

	got := rec.telemetryLines()
	want := []string{
		"queued 1 +1  ", "queued 1 +1  ", "sent 2 -2  ",
		"dropped 1 +0 invalid ",
		"queued 1 +1  ", "queued 1 +1  ",
		"batch_failed 2 +0  503", "batch_failed 2 +0  503", "dropped 2 -2 undeliverable ",
	}
	require.Equal(t, want, got[:len(want)])
	rest := got[len(want):]
	// g2: three queued, then whatever Close's abort left (a failed batch,
	// then an aborted drop of the three), then the late event.
	require.GreaterOrEqual(t, len(rest), 5, "g2 telemetry: %q", rest)
	require.Equal(t, "queued 1 +1  ", rest[0], "g2 telemetry: %q", rest)
	require.Equal(t, "queued 1 +1  ", rest[1], "g2 telemetry: %q", rest)
	require.Equal(t, "queued 1 +1  ", rest[2], "g2 telemetry: %q", rest)
	require.Equal(t, "dropped 1 +0 closed ", rest[len(rest)-1], "g2 telemetry: %q", rest)
	n = rec.pendingSum()
	assert.EqualValues(t, 0, n, "pending sum %d after Close, want 0: %q", n, rest)
	s := g2.Stats()
	dropped := 0
	rec.mu.Lock()
	for _, ti := range rec.telemetry {
		if ti.Kind == agenttrust.TelemetryDropped {
			dropped += ti.Events
		}
	}
	rec.mu.Unlock()
	total := g.Stats().Dropped + s.Dropped
	assert.Equal(t, total, uint64(dropped), "dropped events reported %d, stats say %d", dropped, total)
}

func TestObserveQueueFull(t *testing.T) {
	gw := newGateway(t)
	rec := &guardRecorder{}
	c, err := agenttrust.New(agenttrust.WithBaseURL(gw.srv.URL), agenttrust.WithAPIKey(testKey), rec.observer())
	require.NoError(t, err)
	clk := newFakeClock()
	g := mustNew(t, c, withClock(clk.clock()), WithBatchSize(2), WithQueueCapacity(2), WithFlushInterval(time.Hour))
	// A stalled gateway keeps a full batch in flight.
	release := make(chan struct{})
	gw.setReport(func(w http.ResponseWriter, _ *http.Request, _ int) bool {
		<-release
		return false
	})
	g.Report(ToolEnd("a", time.Millisecond))
	g.Report(ToolEnd("b", time.Millisecond)) // a batch: in flight, stalled
	require.Eventually(t, func() bool { return gw.reportCalls() == 1 }, waitFor, pollEvery, "the batch in flight")
	// The capacity bounds the events waiting, not the batch in flight.
	g.Report(ToolEnd("c", time.Millisecond))
	g.Report(ToolEnd("d", time.Millisecond))
	g.Report(ToolEnd("e", time.Millisecond)) // two waiting: full
	close(release)
	require.NoError(t, g.Flush(context.Background()))
	require.Equal(t, []string{
		"queued 1 +1  ", "queued 1 +1  ", "queued 1 +1  ", "queued 1 +1  ", "dropped 1 +0 queue_full ",
		"sent 2 -2  ", "sent 2 -2  ",
	}, rec.telemetryLines())
}

func TestObserveNoHooks(t *testing.T) {
	gw := newGateway(t)
	// Hooks for requests only: the guard keeps no observer at all.
	c, err := agenttrust.New(agenttrust.WithBaseURL(gw.srv.URL), agenttrust.WithObserver(&agenttrust.Observer{
		CacheLookup: func(context.Context, agenttrust.CacheKind, bool) {},
	}))
	require.NoError(t, err)
	g := mustNew(t, c)
	assert.Nil(t, g.obs, "the guard keeps an observer without check or telemetry hooks")
	assert.Nil(t, g.rep.obs, "the guard keeps an observer without check or telemetry hooks")
}

// A failed batch goes back to the head of a queue that filled up while it
// was out: the newest events no longer fit and are dropped as queue_full,
// not as undeliverable (they were never sent).
func TestObserveRequeueOverflow(t *testing.T) {
	gw := newGateway(t)
	rec := &guardRecorder{}
	c, err := agenttrust.New(agenttrust.WithBaseURL(gw.srv.URL), agenttrust.WithAPIKey(testKey), rec.observer(),
		agenttrust.WithRetryPolicy(agenttrust.RetryPolicy{}))
	require.NoError(t, err)
	clk := newFakeClock()
	g := mustNew(t, c, withClock(clk.clock()), WithBatchSize(2), WithQueueCapacity(2), WithSendAttempts(2),
		WithFlushInterval(time.Hour))
	release := make(chan struct{})
	gw.setReport(func(w http.ResponseWriter, _ *http.Request, n int) bool {
		if n > 1 {
			return false
		}
		<-release
		writeJSON(w, 503, `{"error":"down"}`)
		return true
	})
	g.Report(ToolEnd("a", time.Millisecond))
	g.Report(ToolEnd("b", time.Millisecond)) // a batch: in flight, stalled
	require.Eventually(t, func() bool { return gw.reportCalls() == 1 }, waitFor, pollEvery, "the batch in flight")
	g.Report(ToolEnd("c", time.Millisecond))
	g.Report(ToolEnd("d", time.Millisecond)) // the queue is full
	close(release)
	_ = g.Flush(context.Background()) // c and d are lost: an error
	require.Equal(t, []string{
		"queued 1 +1  ", "queued 1 +1  ", "queued 1 +1  ", "queued 1 +1  ",
		"batch_failed 2 +0  503", "dropped 2 -2 queue_full ", "sent 2 -2  ",
	}, rec.telemetryLines())
	n := rec.pendingSum()
	assert.EqualValues(t, 0, n, "pending sum %d, want 0", n)
	s := g.Stats()
	assert.EqualValues(t, 2, s.Dropped, "stats %+v", s)
	assert.EqualValues(t, 2, s.Sent, "stats %+v", s)
}
