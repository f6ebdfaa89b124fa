package guard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
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

func sameLines(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestObserveCheckOutcomes(t *testing.T) {
	srv := agenttrusttest.NewTestServer(t, agenttrusttest.WithSplitListeners())
	srv.DenyTool("delete_file", "no deletes")
	srv.RequireElevation("send_email")
	agentID := srv.CreateAgent("obs")
	rec := &guardRecorder{}
	c, err := agenttrust.New(agenttrust.WithBaseURL(srv.URL()), agenttrust.WithAuthURL(srv.AuthURL()),
		agenttrust.WithAuditURL(srv.AuditURL()), agenttrust.WithAPIKey(srv.APIKey()), fastRetry, rec.observer())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	g, err := New(c, agentID)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close(ctx)
	open, err := New(c, agentID, WithFailOpen(true), WithBlockOnDeny(false))
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close(ctx)

	if _, err := g.Check(ctx, "read_file", "[5 chars]"); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Check(ctx, "delete_file", ""); !errors.As(err, new(*DeniedError)) {
		t.Fatal(err)
	}
	if _, err := g.Check(ctx, "send_email", ""); !errors.As(err, new(*ElevationRequiredError)) {
		t.Fatal(err)
	}
	// Without BlockOnDeny a denial is a Decision, still a denial.
	if d, err := open.Check(ctx, "delete_file", ""); err != nil || d.Allowed {
		t.Fatal(d, err)
	}
	if d, err := open.Check(ctx, "send_email", ""); err != nil || !d.ElevationRequired {
		t.Fatal(d, err)
	}
	srv.InjectFault("POST /api/v1/agenttrust/check", agenttrusttest.Fault{Status: 503})
	if _, err := g.Check(ctx, "read_file", ""); !errors.As(err, new(*UnavailableError)) {
		t.Fatal(err)
	}
	if d, err := open.Check(ctx, "read_file", ""); err != nil || !d.FailedOpen {
		t.Fatal(d, err)
	}
	srv.ClearFaults()
	c.SetAPIKey("wrong-key-123")
	if _, err := g.Check(ctx, "read_file", ""); !errors.Is(err, agenttrust.ErrAuthentication) {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := g.Check(cctx, "read_file", ""); !errors.Is(err, context.Canceled) {
		t.Fatal(err) // canceled before any I/O: not a check
	}
	if _, err := g.Check(ctx, "", ""); err == nil {
		t.Fatal("empty tool accepted") // invalid: not a check
	}

	sameLines(t, rec.lines(), []string{
		`read_file allowed ""`,
		`delete_file denied ""`,
		`send_email elevation ""`,
		`delete_file denied ""`,
		`send_email elevation ""`,
		`read_file unavailable "503"`,
		`read_file failed_open "503"`,
		`read_file error "401"`,
	})
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if r := rec.results[1]; r.CheckID == "" || r.Tier == "" || r.Duration <= 0 {
		t.Errorf("denial result lacks id, tier or duration: %+v", r)
	}
	if r := rec.results[0]; r.CheckID == "" || r.Tier == "" {
		t.Errorf("allowed result lacks id or tier: %+v", r)
	}
	if i := rec.infos[0]; i.AgentID != agentID || i.Tool != "read_file" || i.Summary != "[5 chars]" {
		t.Errorf("CheckInfo = %+v", i)
	}
	// Every check's API call ran under the check's context (three attempts
	// each for the two 503 checks).
	if got := strings.Join(rec.nested, ","); got != "read_file>actions.check,delete_file>actions.check,send_email>actions.check,"+
		"delete_file>actions.check,send_email>actions.check,read_file>actions.check,read_file>actions.check,read_file>actions.check" {
		t.Errorf("nested operations: %s", got)
	}
}

func TestObserveCheckSummaryTruncated(t *testing.T) {
	gw := newGateway(t)
	rec := &guardRecorder{}
	c, err := agenttrust.New(agenttrust.WithBaseURL(gw.srv.URL), agenttrust.WithAPIKey(testKey), rec.observer())
	if err != nil {
		t.Fatal(err)
	}
	g := mustNew(t, c)
	long := strings.Repeat("é", 300)
	if _, err := g.Check(context.Background(), "read_file", long); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if got := rec.infos[0].Summary; got != strings.Repeat("é", 200) {
		t.Errorf("summary of %d runes, want the 200 sent", len([]rune(got)))
	}
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
	if err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	g := mustNew(t, c, withClock(clk.clock()), WithBatchSize(2), WithQueueCapacity(3), WithSendAttempts(2))
	ctx := context.Background()

	// Two events go out as one batch.
	g.Report(ToolEnd("a", time.Millisecond))
	g.Report(ToolEnd("b", time.Millisecond))
	if err := g.Flush(ctx); err != nil {
		t.Fatal(err)
	}
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
	if err := g.Flush(ctx); !errors.As(err, &de) || de.Undelivered != 2 {
		t.Fatalf("Flush = %v", err)
	}
	if n := rec.pendingSum(); n != 0 || g.Stats().Pending != 0 {
		t.Fatalf("pending sum %d, stats %+v", n, g.Stats())
	}
	// A full queue drops the overflow; then Close drops a late event.
	gw.setReport(func(w http.ResponseWriter, _ *http.Request, _ int) bool {
		writeJSON(w, 503, `{"error":"down"}`)
		return true
	})
	g2 := mustNew(t, c, withClock(clk.clock()), WithBatchSize(3), WithQueueCapacity(3), WithFlushInterval(time.Hour))
	for _, tool := range []string{"e", "f"} {
		g2.Report(ToolEnd(tool, time.Millisecond))
	}
	if got := rec.pendingSum(); got != 2 {
		t.Fatalf("pending sum %d with two queued events, want 2", got)
	}
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
	sameLines(t, got[:len(want)], want)
	rest := got[len(want):]
	// g2: three queued, then whatever Close's abort left (a failed batch,
	// then an aborted drop of the three), then the late event.
	if len(rest) < 5 || rest[0] != "queued 1 +1  " || rest[1] != "queued 1 +1  " || rest[2] != "queued 1 +1  " ||
		rest[len(rest)-1] != "dropped 1 +0 closed " {
		t.Fatalf("g2 telemetry: %q", rest)
	}
	if n := rec.pendingSum(); n != 0 {
		t.Errorf("pending sum %d after Close, want 0: %q", n, rest)
	}
	s := g2.Stats()
	dropped := 0
	rec.mu.Lock()
	for _, ti := range rec.telemetry {
		if ti.Kind == agenttrust.TelemetryDropped {
			dropped += ti.Events
		}
	}
	rec.mu.Unlock()
	if total := g.Stats().Dropped + s.Dropped; uint64(dropped) != total {
		t.Errorf("dropped events reported %d, stats say %d", dropped, total)
	}
}

func TestObserveQueueFull(t *testing.T) {
	gw := newGateway(t)
	rec := &guardRecorder{}
	c, err := agenttrust.New(agenttrust.WithBaseURL(gw.srv.URL), agenttrust.WithAPIKey(testKey), rec.observer())
	if err != nil {
		t.Fatal(err)
	}
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
	require.Eventually(t, func() bool { return gw.reportCalls() == 1 }, waitFor, tick, "the batch in flight")
	// The capacity bounds the events waiting, not the batch in flight.
	g.Report(ToolEnd("c", time.Millisecond))
	g.Report(ToolEnd("d", time.Millisecond))
	g.Report(ToolEnd("e", time.Millisecond)) // two waiting: full
	close(release)
	if err := g.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	sameLines(t, rec.telemetryLines(), []string{
		"queued 1 +1  ", "queued 1 +1  ", "queued 1 +1  ", "queued 1 +1  ", "dropped 1 +0 queue_full ",
		"sent 2 -2  ", "sent 2 -2  ",
	})
}

func TestObserveNoHooks(t *testing.T) {
	gw := newGateway(t)
	// Hooks for requests only: the guard keeps no observer at all.
	c, err := agenttrust.New(agenttrust.WithBaseURL(gw.srv.URL), agenttrust.WithObserver(&agenttrust.Observer{
		CacheLookup: func(context.Context, agenttrust.CacheKind, bool) {},
	}))
	if err != nil {
		t.Fatal(err)
	}
	g := mustNew(t, c)
	if g.obs != nil || g.rep.obs != nil {
		t.Error("the guard keeps an observer without check or telemetry hooks")
	}
}

// A failed batch goes back to the head of a queue that filled up while it
// was out: the newest events no longer fit and are dropped as queue_full,
// not as undeliverable (they were never sent).
func TestObserveRequeueOverflow(t *testing.T) {
	gw := newGateway(t)
	rec := &guardRecorder{}
	c, err := agenttrust.New(agenttrust.WithBaseURL(gw.srv.URL), agenttrust.WithAPIKey(testKey), rec.observer(),
		agenttrust.WithRetryPolicy(agenttrust.RetryPolicy{}))
	if err != nil {
		t.Fatal(err)
	}
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
	require.Eventually(t, func() bool { return gw.reportCalls() == 1 }, waitFor, tick, "the batch in flight")
	g.Report(ToolEnd("c", time.Millisecond))
	g.Report(ToolEnd("d", time.Millisecond)) // the queue is full
	close(release)
	_ = g.Flush(context.Background()) // c and d are lost: an error
	sameLines(t, rec.telemetryLines(), []string{
		"queued 1 +1  ", "queued 1 +1  ", "queued 1 +1  ", "queued 1 +1  ",
		"batch_failed 2 +0  503", "dropped 2 -2 queue_full ", "sent 2 -2  ",
	})
	if n := rec.pendingSum(); n != 0 {
		t.Errorf("pending sum %d, want 0", n)
	}
	if s := g.Stats(); s.Dropped != 2 || s.Sent != 2 {
		t.Errorf("stats %+v", s)
	}
}
