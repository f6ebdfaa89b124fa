package guard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/google/uuid"
)

// Defaults of the Guard's options.
const (
	DefaultCheckTimeout  = 3 * time.Second
	DefaultBatchSize     = 10
	DefaultFlushInterval = 5 * time.Second
	DefaultQueueCapacity = 1000
	DefaultSendAttempts  = 3
	DefaultSendTimeout   = 10 * time.Second
	DefaultPollInterval  = 2 * time.Second
)

// Effect hints how a tool changes the world; see WithEffect.
type Effect = agenttrust.ActionEffect

// The known effects.
const (
	EffectRead        = agenttrust.EffectRead
	EffectMutating    = agenttrust.EffectMutating
	EffectDestructive = agenttrust.EffectDestructive
	EffectAdmin       = agenttrust.EffectAdmin
)

// Guard checks tool calls with the Guardian before they run and reports what
// they did afterwards. Create one per agent run with New, share it between
// every tool of the run, and defer Close. A Guard is safe for concurrent use.
type Guard struct {
	client    *agenttrust.Client
	agentID   string
	sessionID string
	cfg       config
	rep       *reporter
	closed    atomic.Bool
	obs       *observer // nil: no hooks installed on the client

	checks, denied, unavailable, failedOpen atomic.Uint64
}

type config struct {
	sessionID     string
	blockOnDeny   bool
	failOpen      bool
	checkTimeout  time.Duration
	batchSize     int
	flushInterval time.Duration
	queueCapacity int
	sendAttempts  int
	sendTimeout   time.Duration
	logger        *slog.Logger
	clock         clock
}

// Option configures a Guard. An invalid value makes New fail.
type Option func(*config) error

// WithSessionID sets the session id sent with every check and batch. By
// default New generates a random UUIDv4.
func WithSessionID(id string) Option {
	return func(c *config) error {
		if id == "" {
			return errors.New("WithSessionID: empty session id")
		}
		c.sessionID = id
		return nil
	}
}

// WithBlockOnDeny sets whether Check returns a *DeniedError or
// *ElevationRequiredError on a denial (true, the default) or a Decision with
// Allowed false and a nil error.
func WithBlockOnDeny(block bool) Option {
	return func(c *config) error { c.blockOnDeny = block; return nil }
}

// WithFailOpen sets whether Check allows a tool when the Guardian is
// unavailable; default false. Only unavailability fails open:
// authentication errors, bad requests and the caller's own cancellation
// never do.
func WithFailOpen(failOpen bool) Option {
	return func(c *config) error { c.failOpen = failOpen; return nil }
}

// WithCheckTimeout bounds each check, retries included (default 3 s). The
// caller's context can only shorten it. Within it, a check that got no
// answer, or a 502, 503, 504 or 429, is retried with the client's backoff
// and jitter until the timeout would be passed, not only the client's
// MaxRetries times, so a gateway restart shorter than the timeout costs no
// failed check. A 429 whose Retry-After does not fit is returned at once.
func WithCheckTimeout(d time.Duration) Option {
	return func(c *config) error { return positive("WithCheckTimeout", d, &c.checkTimeout) }
}

// WithBatchSize sets how many events make a batch (default 10).
func WithBatchSize(n int) Option {
	return func(c *config) error { return positiveInt("WithBatchSize", n, &c.batchSize) }
}

// WithFlushInterval sets how often pending events are sent (default 5 s).
// It also caps the retry backoff.
func WithFlushInterval(d time.Duration) Option {
	return func(c *config) error { return positive("WithFlushInterval", d, &c.flushInterval) }
}

// WithQueueCapacity bounds the events waiting to be sent (default 1000);
// events beyond it are dropped and counted. It must be at least the batch
// size.
func WithQueueCapacity(n int) Option {
	return func(c *config) error { return positiveInt("WithQueueCapacity", n, &c.queueCapacity) }
}

// WithSendAttempts sets how many times a batch is tried before its events
// are dropped (default 3).
func WithSendAttempts(n int) Option {
	return func(c *config) error { return positiveInt("WithSendAttempts", n, &c.sendAttempts) }
}

// WithSendTimeout bounds each telemetry request (default 10 s).
func WithSendTimeout(d time.Duration) Option {
	return func(c *config) error { return positive("WithSendTimeout", d, &c.sendTimeout) }
}

// WithLogger sets the logger for denials (info), fail-opens and telemetry
// problems (warning). Nil, the default, is silent. A check reply field of the
// wrong type is logged by the client, on the agenttrust.WithLogger logger.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error { c.logger = l; return nil }
}

// withClock replaces the reporter's clock; for tests.
func withClock(clk clock) Option {
	return func(c *config) error { c.clock = clk; return nil }
}

func positive(name string, d time.Duration, dst *time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("%s: must be positive, got %v", name, d)
	}
	*dst = d
	return nil
}

func positiveInt(name string, n int, dst *int) error {
	if n <= 0 {
		return fmt.Errorf("%s: must be positive, got %d", name, n)
	}
	*dst = n
	return nil
}

// New returns a Guard for agentID that uses client's Actions and Telemetry
// services. It fails before any I/O on a nil client, an empty agent id or an
// invalid option. No goroutine starts until the first Report.
func New(client *agenttrust.Client, agentID string, opts ...Option) (*Guard, error) {
	if client == nil {
		return nil, validationErr("guard: nil client")
	}
	if agentID == "" {
		return nil, validationErr("guard: missing required agent_id")
	}
	cfg := config{
		blockOnDeny:   true,
		checkTimeout:  DefaultCheckTimeout,
		batchSize:     DefaultBatchSize,
		flushInterval: DefaultFlushInterval,
		queueCapacity: DefaultQueueCapacity,
		sendAttempts:  DefaultSendAttempts,
		sendTimeout:   DefaultSendTimeout,
		clock:         realClock(),
	}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, validationErr("guard: invalid option: " + err.Error())
		}
	}
	if cfg.queueCapacity < cfg.batchSize {
		return nil, validationErr(fmt.Sprintf("guard: invalid option: queue capacity %d is below the batch size %d", cfg.queueCapacity, cfg.batchSize))
	}
	if cfg.sessionID == "" {
		cfg.sessionID = uuid.NewString()
	}
	g := &Guard{client: client, agentID: agentID, sessionID: cfg.sessionID, cfg: cfg}
	g.rep = newReporter(client, agentID, cfg.sessionID, &g.cfg)
	g.obs = g.rep.obs
	return g, nil
}

// AgentID returns the agent the Guard checks for.
func (g *Guard) AgentID() string { return g.agentID }

// SessionID returns the session id sent with every check and batch.
func (g *Guard) SessionID() string { return g.sessionID }

// Decision is the outcome of a check. Run the tool only when Check returned
// a nil error and Allowed is true; a non-nil error always comes with Allowed
// false.
type Decision struct {
	// Allowed is true when the tool may run.
	Allowed bool
	// CheckID identifies the check at the gateway.
	CheckID string
	// Reason is the Guardian's explanation.
	Reason string
	// GuardTier is the tier that decided, e.g. "fast".
	GuardTier string
	// Confidence is the Guardian's confidence, when given.
	Confidence *float64
	// LatencyMs is the Guardian's own latency, when given.
	LatencyMs *int
	// ElevationRequired is set on a denial that a human approval can lift.
	ElevationRequired bool
	// ApprovalID identifies the approval request of an elevation.
	ApprovalID string
	// FailedOpen is set when the Guardian was unavailable and the Guard
	// allowed the tool because of WithFailOpen.
	FailedOpen bool
}

// CheckOption configures one Check.
type CheckOption func(*checkConfig)

type checkConfig struct{ effect Effect }

// WithEffect sends the tool's effect (read, mutating, destructive, admin)
// with the check; without it the gateway classifies the tool by name.
func WithEffect(e Effect) CheckOption { return func(c *checkConfig) { c.effect = e } }

// untilDeadline makes a check ride out a gateway restart within the check
// timeout; a package slice, so that passing it allocates nothing.
var untilDeadline = []agenttrust.RequestOption{agenttrust.WithRequestRetryUntilDeadline()}

// Check asks the Guardian whether tool may run. summary describes the input
// and is cut to 200 runes; the Guard sends it as given, so pass
// LengthSummary(input) unless the input may leave the process.
//
// Outcomes: allowed gives Allowed true and a nil error; a
// denial gives *DeniedError or *ElevationRequiredError (or, without
// BlockOnDeny, Allowed false and a nil error); an unavailable Guardian gives
// *UnavailableError, or Allowed and FailedOpen with WithFailOpen; the
// caller's cancellation gives ctx's error; any other API error (400, 401,
// 403, 404, ...) is returned unchanged. An empty tool name is a validation
// error, and after Close Check returns ErrClosed, both before any I/O.
func (g *Guard) Check(ctx context.Context, tool, summary string, opts ...CheckOption) (dec Decision, err error) {
	if ctx == nil {
		return Decision{}, validationErr("nil context")
	}
	if tool == "" {
		return Decision{}, validationErr("missing required tool name")
	}
	if g.closed.Load() {
		return Decision{}, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return Decision{}, err
	}
	var effect Effect
	if len(opts) > 0 { // cc escapes through the options: only build it for them
		var cc checkConfig
		for _, o := range opts {
			if o != nil {
				o(&cc)
			}
		}
		effect = cc.effect
	}
	g.checks.Add(1)
	ctx, ck := g.obs.checkStart(ctx, g.agentID, tool, summary)
	defer ck.done(&dec, &err)
	cctx, cancel := context.WithTimeout(ctx, g.cfg.checkTimeout)
	defer cancel()
	res, err := g.client.Actions.Check(cctx, agenttrust.ActionCheckParams{
		AgentID:          g.agentID,
		ToolName:         tool,
		ToolInputSummary: TruncateRunes(summary, agenttrust.MaxSummaryRunes),
		SessionID:        g.sessionID,
		ActionEffect:     effect,
	}, untilDeadline...)
	if err == nil && !res.Decided() {
		err = agenttrust.NewError(agenttrust.CodeDecode, `Decode error: check reply has no boolean "allowed"`, nil)
	}
	if err != nil {
		switch classify(ctx.Err(), cctx.Err(), err) {
		case outcomeCaller:
			return Decision{}, ctx.Err()
		case outcomeUnavailable:
			g.unavailable.Add(1)
			if g.cfg.failOpen {
				g.failedOpen.Add(1)
				ck.failedOpen(err)
				g.logWarn("agenttrust: Guardian unavailable; failing open", tool, err)
				return Decision{Allowed: true, FailedOpen: true}, nil
			}
			return Decision{}, &UnavailableError{Code: agenttrust.CodeGuardianUnavailable, Tool: tool, Cause: err}
		default:
			return Decision{}, err
		}
	}
	d := Decision{
		Allowed:    res.Allowed,
		CheckID:    res.CheckID,
		Reason:     res.Reason,
		GuardTier:  res.GuardTier,
		Confidence: res.Confidence,
		LatencyMs:  res.LatencyMs,
	}
	if d.Allowed {
		return d, nil
	}
	d.ElevationRequired, d.ApprovalID = res.ElevationRequired, res.ApprovalID
	g.denied.Add(1)
	if g.cfg.logger != nil {
		g.cfg.logger.Info("agenttrust: tool denied", slog.String("tool", tool), slog.String("reason", d.Reason),
			slog.String("check_id", d.CheckID), slog.Bool("elevation_required", d.ElevationRequired))
	}
	if !g.cfg.blockOnDeny {
		return d, nil
	}
	return d, DenialError(tool, d)
}

// DenialError builds the typed error for a Decision that is not allowed: an
// *ElevationRequiredError when it asks for elevation, else a *DeniedError.
// It returns nil for an allowed Decision. Integrations use it to treat a
// non-blocking denial as a denial.
func DenialError(tool string, d Decision) error {
	if d.Allowed {
		return nil
	}
	if d.ElevationRequired {
		return newElevationRequiredError(tool, d)
	}
	return newDeniedError(tool, d)
}

func (g *Guard) logWarn(msg, tool string, err error) {
	if g.cfg.logger != nil {
		g.cfg.logger.Warn(msg, slog.String("tool", tool), slog.String("error", err.Error()))
	}
}

// outcome is the classifier's verdict on a failed check or send.
type outcome int

const (
	// outcomeFail: return the error unchanged; never fail open.
	outcomeFail outcome = iota
	// outcomeCaller: the caller's context ended; return its error.
	outcomeCaller
	// outcomeUnavailable: the Guardian could not answer; may fail open.
	outcomeUnavailable
)

// classify is the fail-open classifier. callerErr is the
// caller's ctx.Err(), ownErr the derived context's Err() (nil when there is
// none), err the failure. The caller's context is tested first, then the
// answer, then the derived context.
func classify(callerErr, ownErr, err error) outcome {
	if callerErr != nil {
		return outcomeCaller
	}
	var ae *agenttrust.AgentTrustError
	if errors.As(err, &ae) {
		switch {
		case ae.Code == agenttrust.CodeDecode:
			return outcomeUnavailable // a malformed 2xx
		case ae.Status == http.StatusTooManyRequests, ae.Status >= 500 && ae.Status <= 599:
			return outcomeUnavailable
		case ae.Status != 0:
			return outcomeFail // 3xx, 400, 401, 403, 404, other 4xx
		case ae.Code == agenttrust.CodeNetwork:
			return outcomeUnavailable // no HTTP response, or the guard's own timeout
		default:
			return outcomeFail // validation before any I/O
		}
	}
	if ownErr != nil || errors.Is(err, context.DeadlineExceeded) {
		return outcomeUnavailable
	}
	return outcomeFail
}

// Report queues a telemetry event. It never blocks and does no network I/O:
// a background goroutine (started by the first Report) sends batches of
// BatchSize events, or whatever is pending every FlushInterval. When the
// queue is full, or after Close, the event is dropped and counted in Stats.
// A zero Time is stamped with the current time.
func (g *Guard) Report(ev Event) { g.rep.report(ev) }

// Flush waits until every event queued before the call has been sent or
// dropped. It returns nil when all were sent, a *DeliveryError counting the
// dropped ones, ctx's error when ctx ends first (the events stay queued),
// and ErrClosed after Close.
func (g *Guard) Flush(ctx context.Context) error { return g.rep.flush(ctx) }

// FlushAsync asks the background goroutine to send what is pending now and
// returns at once.
func (g *Guard) FlushAsync() { g.rep.flushAsync() }

// Close stops accepting events, sends what is pending (retrying as usual)
// until ctx ends, then cancels what is still in flight and stops the
// background goroutine. It returns nil when everything was delivered, else a
// *DeliveryError. Close is idempotent: later calls wait for the first and
// return its result. After Close, Check returns ErrClosed.
func (g *Guard) Close(ctx context.Context) error {
	g.closed.Store(true)
	return g.rep.close(ctx)
}

// Stats returns a snapshot of the Guard's counters.
func (g *Guard) Stats() Stats {
	s := g.rep.stats()
	s.Checks = g.checks.Load()
	s.Denied = g.denied.Load()
	s.Unavailable = g.unavailable.Load()
	s.FailedOpen = g.failedOpen.Load()
	return s
}
