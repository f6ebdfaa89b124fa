package guard

import (
	"context"
	"errors"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
)

// observer passes checks and telemetry changes to the hooks installed on the
// Guard's client (agenttrust.WithObserver). A nil *observer does nothing, so
// every call site is one method call costing a nil check when no hook is
// installed.
type observer struct{ h agenttrust.Observer }

func newObserver(c *agenttrust.Client) *observer {
	h := c.Observer()
	if h == nil || (h.CheckStart == nil && h.CheckDone == nil && h.Telemetry == nil) {
		return nil
	}
	return &observer{h: *h}
}

// checkObs is one observed check; nil when nothing observes checks.
type checkObs struct {
	o     *observer
	ctx   context.Context
	info  agenttrust.CheckInfo
	start time.Time
	cause error // why the check failed open
}

// checkStart reports the start of a check and returns the context the check
// runs under, with the state checkObs.done needs.
func (o *observer) checkStart(ctx context.Context, agentID, tool, summary string) (context.Context, *checkObs) {
	if o == nil || (o.h.CheckStart == nil && o.h.CheckDone == nil) {
		return ctx, nil
	}
	c := &checkObs{o: o, info: agenttrust.CheckInfo{AgentID: agentID, Tool: tool,
		Summary: TruncateRunes(summary, agenttrust.MaxSummaryRunes)}, start: time.Now()}
	if o.h.CheckStart != nil {
		if nctx := o.h.CheckStart(ctx, c.info); nctx != nil {
			ctx = nctx
		}
	}
	c.ctx = ctx
	return ctx, c
}

// failedOpen records the failure a check failed open on.
func (c *checkObs) failedOpen(err error) {
	if c != nil {
		c.cause = err
	}
}

// done reports the decision Check returns: *d and *err are its results.
func (c *checkObs) done(d *Decision, err *error) {
	if c == nil || c.o.h.CheckDone == nil {
		return
	}
	res := agenttrust.CheckResult{Tier: d.GuardTier, CheckID: d.CheckID, Duration: time.Since(c.start)}
	res.Outcome, res.ErrorClass = checkOutcome(d, *err, c.cause)
	c.o.h.CheckDone(c.ctx, c.info, res)
}

// checkOutcome classifies Check's results for the observer.
func checkOutcome(d *Decision, err, cause error) (agenttrust.CheckOutcome, string) {
	if err == nil {
		switch {
		case d.FailedOpen:
			return agenttrust.CheckFailedOpen, agenttrust.ErrorClass(cause)
		case d.Allowed:
			return agenttrust.CheckAllowed, ""
		case d.ElevationRequired:
			return agenttrust.CheckElevation, ""
		}
		return agenttrust.CheckDenied, ""
	}
	var (
		denied *DeniedError
		elev   *ElevationRequiredError
		unav   *UnavailableError
	)
	switch {
	case errors.As(err, &denied):
		return agenttrust.CheckDenied, ""
	case errors.As(err, &elev):
		return agenttrust.CheckElevation, ""
	case errors.As(err, &unav):
		return agenttrust.CheckUnavailable, agenttrust.ErrorClass(unav.Cause)
	}
	return agenttrust.CheckError, agenttrust.ErrorClass(err)
}

// telemetry reports a change in the reporter.
func (o *observer) telemetry(kind agenttrust.TelemetryKind, events, pendingDelta int, reason agenttrust.DropReason, err error) {
	if o == nil || o.h.Telemetry == nil {
		return
	}
	o.h.Telemetry(agenttrust.TelemetryInfo{Kind: kind, Events: events, PendingDelta: pendingDelta,
		Reason: reason, ErrorClass: agenttrust.ErrorClass(err)})
}

// queued reports one queued event.
func (o *observer) queued() {
	if o != nil {
		o.telemetry(agenttrust.TelemetryQueued, 1, 1, "", nil)
	}
}

// rejected reports an event dropped without being queued.
func (o *observer) rejected(reason agenttrust.DropReason) {
	if o != nil {
		o.telemetry(agenttrust.TelemetryDropped, 1, 0, reason, nil)
	}
}

// dropped reports n queued events given up; aborted says Close gave up on
// them.
func (o *observer) dropped(n int, aborted bool) {
	if o == nil || n == 0 {
		return
	}
	reason := agenttrust.DropUndeliverable
	if aborted {
		reason = agenttrust.DropAborted
	}
	o.telemetry(agenttrust.TelemetryDropped, n, -n, reason, nil)
}

// overflowed reports n queued events pushed out of a full queue when a
// failed batch went back to its head.
func (o *observer) overflowed(n int) {
	if o != nil && n > 0 {
		o.telemetry(agenttrust.TelemetryDropped, n, -n, agenttrust.DropQueueFull, nil)
	}
}

// sent reports a delivered batch of n events.
func (o *observer) sent(n int) {
	if o != nil {
		o.telemetry(agenttrust.TelemetrySent, n, -n, "", nil)
	}
}

// batchFailed reports a failed send of n events.
func (o *observer) batchFailed(n int, err error) {
	if o != nil {
		o.telemetry(agenttrust.TelemetryBatchFailed, n, 0, "", err)
	}
}
