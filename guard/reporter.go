package guard

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
)

// initialBackoff is the first delay before a failed batch is retried; it
// doubles on each consecutive failure, capped at the flush interval.
const initialBackoff = time.Second

// maxBatchEvents bounds one telemetry request when a backlog waits: the
// reporter then sends as many whole batches of BatchSize as wait, up to this
// many events (or one batch, when BatchSize is larger), in one request. A
// quiet agent still sends batches of BatchSize. With one request at a time,
// this is what lets a guard keep up over a slow link: at 50 ms a round trip,
// batches of 10 carry at most 200 events/s, batches of 500 up to 10,000.
const maxBatchEvents = 500

// clock is the reporter's view of time, replaced in tests.
type clock struct {
	now func() time.Time
	// ticker returns the channel of a ticker with period d and its stop func.
	ticker func(d time.Duration) (<-chan time.Time, func())
	// after returns a channel that fires once after d, and its stop func.
	after func(d time.Duration) (<-chan time.Time, func())
}

func realClock() clock {
	return clock{
		now: time.Now,
		ticker: func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		},
		after: func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTimer(d)
			return t.C, func() { t.Stop() }
		},
	}
}

// entry is a queued event with its arrival number and failed attempts.
type entry struct {
	ev       Event
	seq      uint64
	attempts int
}

// waiter is a Flush or Close waiting until every event numbered below target
// is sent or dropped.
type waiter struct {
	target  uint64
	dropped int
	err     error // the error that made the last of its events drop
	done    chan struct{}
}

// reporter batches telemetry events and sends them from one background
// goroutine.
type reporter struct {
	client             *agenttrust.Client
	agentID, sessionID string
	batchSize          int
	maxBatch           int // the most events in one request: whole batches, at least one
	capacity           int
	attempts           int
	interval           time.Duration
	sendTimeout        time.Duration
	log                *slog.Logger
	clk                clock
	obs                *observer // nil: no hooks installed on the client

	baseCtx context.Context         // the parent of every send; ends on abort
	abort   context.CancelCauseFunc // cancels in-flight sends when Close gives up, with ctx's error as the cause
	wake    chan struct{}           // capacity 1: "look at the queue"
	exited  chan struct{}           // closed when the goroutine returns

	mu            sync.Mutex
	queue         []entry
	inflight      []entry                     // the batch being sent; pending, but outside the capacity
	batchBuf      []entry                     // reused backing array of inflight
	wireBuf       []agenttrust.TelemetryEvent // reused by send (goroutine only)
	nextSeq       uint64
	flushTo       uint64 // send every event numbered below this
	reported      uint64
	sent          uint64
	dropped       uint64
	failedBatches uint64
	overflowing   bool // inside an overflow episode (one log line each)
	lateLogged    bool // a Report after Close was logged
	started       bool
	closing       bool
	closeDone     chan struct{}
	closeErr      error
	waiters       []*waiter
}

func newReporter(client *agenttrust.Client, agentID, sessionID string, cfg *config) *reporter {
	ctx, cancel := context.WithCancelCause(context.Background())
	return &reporter{
		client:      client,
		agentID:     agentID,
		sessionID:   sessionID,
		batchSize:   cfg.batchSize,
		maxBatch:    max(1, maxBatchEvents/cfg.batchSize) * cfg.batchSize,
		capacity:    cfg.queueCapacity,
		attempts:    cfg.sendAttempts,
		interval:    cfg.flushInterval,
		sendTimeout: cfg.sendTimeout,
		log:         cfg.logger,
		clk:         cfg.clock,
		obs:         newObserver(client),
		baseCtx:     ctx,
		abort:       cancel,
		wake:        make(chan struct{}, 1),
		exited:      make(chan struct{}),
	}
}

func (r *reporter) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// report queues ev; it never blocks on I/O. An invalid event, one reported
// after Close or one that finds the queue full is dropped and counted.
func (r *reporter) report(ev Event) {
	var logMsg string
	r.mu.Lock()
	r.reported++
	switch {
	case r.closing:
		r.dropped++
		r.obs.rejected(agenttrust.DropClosed)
		if !r.lateLogged {
			r.lateLogged = true
			logMsg = "agenttrust: telemetry event reported after Close; dropped"
		}
	case !ev.valid():
		r.dropped++
		r.obs.rejected(agenttrust.DropInvalid)
		logMsg = "agenttrust: telemetry event with an unknown type or no tool name; dropped"
	case len(r.queue) >= r.capacity:
		r.dropped++
		r.obs.rejected(agenttrust.DropQueueFull)
		if !r.overflowing {
			r.overflowing = true
			logMsg = "agenttrust: telemetry queue full; dropping events"
		}
	default:
		r.overflowing = false
		if ev.Time.IsZero() {
			ev.Time = r.clk.now()
		}
		r.queue = append(r.queue, entry{ev: ev, seq: r.nextSeq})
		r.nextSeq++
		r.obs.queued()
		if !r.started {
			r.started = true
			go r.run()
		}
		if len(r.queue) >= r.batchSize {
			r.signal()
		}
	}
	r.mu.Unlock()
	if logMsg != "" && r.log != nil {
		r.log.Warn(logMsg, slog.String("tool", ev.Tool), slog.String("event_type", string(ev.Type)))
	}
}

// minPendingLocked returns the number of the oldest event not yet sent or
// dropped (nextSeq when none is pending). Events leave in order.
func (r *reporter) minPendingLocked() uint64 {
	if len(r.inflight) > 0 {
		return r.inflight[0].seq
	}
	if len(r.queue) > 0 {
		return r.queue[0].seq
	}
	return r.nextSeq
}

// resolveLocked releases the waiters whose events have all left the queue.
func (r *reporter) resolveLocked() {
	if len(r.waiters) == 0 {
		return
	}
	low := r.minPendingLocked()
	kept := r.waiters[:0]
	for _, w := range r.waiters {
		if w.target <= low {
			close(w.done)
		} else {
			kept = append(kept, w)
		}
	}
	for i := len(kept); i < len(r.waiters); i++ {
		r.waiters[i] = nil
	}
	r.waiters = kept
}

// dropLocked counts es as dropped, for the stats and for the waiters.
func (r *reporter) dropLocked(es []entry, err error) {
	if len(es) == 0 {
		return
	}
	r.dropped += uint64(len(es))
	for _, w := range r.waiters {
		n := 0
		for _, e := range es {
			if e.seq < w.target {
				n++
			}
		}
		if n > 0 {
			w.dropped += n
			w.err = err
		}
	}
}

// nextBatchLocked takes the next batch to send, or reports that the
// goroutine should exit. A nil batch and false mean: wait.
func (r *reporter) nextBatchLocked() (batch []entry, exit bool) {
	if r.baseCtx.Err() != nil {
		r.obs.dropped(len(r.queue), true)
		r.dropLocked(r.queue, context.Cause(r.baseCtx))
		r.queue = nil
		r.resolveLocked()
		return nil, true
	}
	n := len(r.queue)
	if n == 0 {
		return nil, r.closing
	}
	if !r.closing && r.queue[0].seq >= r.flushTo {
		// Only the size trigger: whole batches, the rest waits for the
		// next trigger.
		if n < r.batchSize {
			return nil, false
		}
		n -= n % r.batchSize
	}
	n = min(n, r.maxBatch)
	batch = append(r.batchBuf[:0], r.queue[:n]...)
	r.batchBuf = batch
	rest := copy(r.queue, r.queue[n:])
	clear(r.queue[rest:])
	r.queue = r.queue[:rest]
	r.inflight = batch
	return batch, false
}

// run is the reporter's goroutine: it sends batches in order, one request
// at a time.
func (r *reporter) run() {
	defer close(r.exited)
	tick, stopTick := r.clk.ticker(r.interval)
	defer stopTick()
	failures := 0
	for {
		r.mu.Lock()
		batch, exit := r.nextBatchLocked()
		r.mu.Unlock()
		if exit {
			return
		}
		if batch == nil {
			select {
			case <-r.wake:
			case <-tick:
				r.mu.Lock()
				r.flushTo = r.nextSeq
				r.mu.Unlock()
			case <-r.baseCtx.Done():
			}
			continue
		}
		err := r.send(batch)
		if delay := r.finish(batch, err, &failures); delay > 0 {
			c, stop := r.clk.after(delay)
			select {
			case <-c:
			case <-r.baseCtx.Done():
			}
			stop()
		}
	}
}

// send posts one batch under the reporter's own context with the send
// timeout.
func (r *reporter) send(batch []entry) error {
	evs := r.wireBuf[:0]
	for i := range batch {
		evs = append(evs, batch[i].ev.wire())
	}
	r.wireBuf = evs
	ctx, cancel := context.WithTimeout(r.baseCtx, r.sendTimeout)
	defer cancel()
	_, err := r.client.Telemetry.Report(ctx, agenttrust.TelemetryReportParams{
		AgentID: r.agentID, SessionID: r.sessionID, Events: evs,
	})
	clear(evs) // keep no tool names alive between sends
	return err
}

// finish accounts for a send's outcome and returns how long to wait before
// the next attempt.
func (r *reporter) finish(batch []entry, err error, failures *int) time.Duration {
	r.mu.Lock()
	r.inflight = nil
	defer clear(batch) // after the accounting below; keeps no events alive
	if err == nil {
		r.sent += uint64(len(batch))
		r.obs.sent(len(batch))
		*failures = 0
		r.resolveLocked()
		r.mu.Unlock()
		return 0
	}
	r.failedBatches++
	r.obs.batchFailed(len(batch), err)
	var delay time.Duration
	retry := classify(r.baseCtx.Err(), nil, err) == outcomeUnavailable
	dropErr := err
	if r.baseCtx.Err() != nil {
		// Close gave up on this send: what is lost is lost to its deadline.
		dropErr = context.Cause(r.baseCtx)
	}
	var gaveUp []entry
	kept, full := 0, 0
	if retry {
		keep := make([]entry, 0, len(batch))
		for _, e := range batch {
			e.attempts++
			if e.attempts >= r.attempts {
				gaveUp = append(gaveUp, e)
			} else {
				keep = append(keep, e)
			}
		}
		// Back at the head of the queue. The queue may have filled up while
		// the batch was out: then, as for an incoming event, the newest
		// events are the ones that no longer fit. (A batch never holds more
		// than the capacity, so that cannot cut into it.)
		kept = len(keep)
		r.queue = slices.Insert(r.queue, 0, keep...)
		if len(r.queue) > r.capacity {
			full = len(r.queue) - r.capacity
			gaveUp = append(gaveUp, r.queue[r.capacity:]...)
			clear(r.queue[r.capacity:])
			r.queue = r.queue[:r.capacity]
		}
		*failures++
		if kept > 0 {
			// Wait only before trying these events again: after a batch's
			// last attempt nothing of it is left to wait for.
			delay = r.backoff(*failures, err)
		}
	} else {
		gaveUp = batch
	}
	r.obs.dropped(len(gaveUp)-full, r.baseCtx.Err() != nil)
	r.obs.overflowed(full)
	r.dropLocked(gaveUp, dropErr)
	r.resolveLocked()
	r.mu.Unlock()
	if r.log != nil {
		r.log.Warn("agenttrust: telemetry batch failed",
			slog.Int("events", len(batch)), slog.Int("dropped", len(gaveUp)),
			slog.Bool("retrying", kept > 0), slog.String("error", err.Error()))
	}
	return delay
}

// backoff is 1 s doubling per consecutive failure, or the server's
// Retry-After, both capped at the flush interval.
func (r *reporter) backoff(failures int, err error) time.Duration {
	var ae *agenttrust.AgentTrustError
	if errors.As(err, &ae) && ae.RetryAfter > 0 {
		return min(ae.RetryAfter, r.interval)
	}
	d := initialBackoff
	for i := 1; i < failures && d < r.interval; i++ {
		d *= 2
	}
	return min(d, r.interval)
}

func (r *reporter) flushAsync() {
	r.mu.Lock()
	if !r.closing {
		r.flushTo = r.nextSeq
	}
	r.mu.Unlock()
	r.signal()
}

// flush waits until every event queued before the call is sent or dropped.
func (r *reporter) flush(ctx context.Context) error {
	if ctx == nil {
		return validationErr("nil context")
	}
	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		return ErrClosed
	}
	target := r.nextSeq
	if r.minPendingLocked() >= target {
		r.mu.Unlock()
		return nil
	}
	w := &waiter{target: target, done: make(chan struct{})}
	r.waiters = append(r.waiters, w)
	r.flushTo = max(r.flushTo, target)
	r.mu.Unlock()
	r.signal()
	select {
	case <-w.done:
	case <-ctx.Done():
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-w.done: // w.done is closed under the lock, so this is final
	default:
		r.removeWaiterLocked(w)
		return ctx.Err()
	}
	if w.dropped > 0 {
		return &DeliveryError{Undelivered: w.dropped, Err: w.err}
	}
	return nil
}

func (r *reporter) removeWaiterLocked(w *waiter) {
	for i, x := range r.waiters {
		if x == w {
			r.waiters = append(r.waiters[:i], r.waiters[i+1:]...)
			return
		}
	}
}

// close stops intake, drains within ctx, then cancels what is in flight and
// stops the goroutine.
func (r *reporter) close(ctx context.Context) error {
	if ctx == nil {
		return validationErr("nil context")
	}
	r.mu.Lock()
	if r.closeDone != nil {
		done := r.closeDone
		r.mu.Unlock()
		select {
		case <-done:
			return r.closeErr
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.closeDone = make(chan struct{})
	r.closing = true
	started := r.started
	w := &waiter{target: math.MaxUint64, done: make(chan struct{})}
	if started {
		r.waiters = append(r.waiters, w)
	}
	r.mu.Unlock()

	var err error
	if started {
		r.signal()
		select {
		case <-r.exited:
		case <-ctx.Done():
			// Events dropped from here on are lost to ctx; those dropped
			// before keep the send error that made them drop.
			r.abort(ctx.Err())
			<-r.exited
		}
		r.mu.Lock()
		n, lastErr := w.dropped, w.err
		r.mu.Unlock()
		if n > 0 {
			err = &DeliveryError{Undelivered: n, Err: lastErr}
		}
	}
	r.abort(ErrClosed)
	r.closeErr = err
	close(r.closeDone)
	return err
}

// Stats is a snapshot of a Guard's counters. At every moment
// Reported = Sent + Dropped + Pending; after Close, Pending is 0.
type Stats struct {
	// Reported counts every Report call.
	Reported uint64
	// Sent counts events the gateway accepted.
	Sent uint64
	// Dropped counts every event given up: queue overflow, invalid events,
	// Reports after Close, batches that failed for good, and what Close
	// could not deliver. A Flush or Close error counts only the events
	// that call waited for.
	Dropped uint64
	// FailedBatches counts failed send attempts.
	FailedBatches uint64
	// Pending counts events queued or being sent.
	Pending uint64

	// Checks counts Check calls that asked the Guardian.
	Checks uint64
	// Denied counts denials, elevations included.
	Denied uint64
	// Unavailable counts checks the Guardian could not answer.
	Unavailable uint64
	// FailedOpen counts unavailable checks that were allowed by FailOpen.
	FailedOpen uint64
}

func (r *reporter) stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Stats{
		Reported:      r.reported,
		Sent:          r.sent,
		Dropped:       r.dropped,
		FailedBatches: r.failedBatches,
		Pending:       uint64(len(r.queue) + len(r.inflight)),
	}
}
