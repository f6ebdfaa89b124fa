// Package langchaingo enforces AgentTrust guard checks on langchaingo tools
// and reports their telemetry.
//
// Enforcement lives in the tool: WrapTool (or WrapTools) returns a tool whose
// Call asks the Guardian first and calls the inner tool only when the check
// allowed it. A langchaingo callback handler cannot stop a tool, so NewHandler
// only adds tool_start events and an end-of-run flush.
//
//	g, _ := guard.New(client, agentID)
//	defer g.Close(ctx)
//	wrapped := langchaingo.WrapTools(myTools, g)
//	h := langchaingo.NewHandler(g, wrapped)
//	agent := agents.NewOneShotAgent(llm, wrapped)
//	ex := agents.NewExecutor(agent, agents.WithCallbacksHandler(h), agents.WithMaxIterations(5))
//	out, err := chains.Run(ctx, ex, question)
//	var denied *guard.DeniedError
//	if errors.As(err, &denied) { ... }
//
// By default a denial ends the run with a *guard.DeniedError: the executor
// then discards the intermediate steps and does not save memory. With
// WithDenialAsObservation the denial becomes a short observation instead and
// the model may change course. Elevations, an unavailable Guardian (when the
// Guard is fail-closed) and the caller's cancellation always end the run
// with an error.
//
// Privacy: by default only "[N chars]" is sent for a tool's input; the input
// itself only with WithLogInputs or a WithSummarizer, cut to 200 runes. The
// output and the error text are never sent.
package langchaingo

import (
	"context"
	"errors"
	"strings"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/guard"
	"github.com/tmc/langchaingo/callbacks"
	"github.com/tmc/langchaingo/schema"
	"github.com/tmc/langchaingo/tools"
)

// Option configures WrapTool and WrapTools.
type Option func(*options)

type options struct {
	observation func(*guard.DeniedError) string
	summarize   func(tool, input string) string
	effect      guard.Effect
	effects     map[string]guard.Effect
}

// DefaultDenialObservation is the observation WithDenialAsObservation(nil)
// returns: `Tool "<name>" was denied by policy.`, without the reason or the
// check id.
func DefaultDenialObservation(d *guard.DeniedError) string {
	return `Tool "` + d.Tool + `" was denied by policy.`
}

// WithDenialAsObservation makes a denied tool return (format(err), nil)
// instead of ("", err), so the denial becomes an observation for the model
// rather than the end of the run. A nil format uses
// DefaultDenialObservation. Elevations and every other failure are still
// returned as errors.
func WithDenialAsObservation(format func(*guard.DeniedError) string) Option {
	if format == nil {
		format = DefaultDenialObservation
	}
	return func(o *options) { o.observation = format }
}

// WithLogInputs sends the tool's input itself as the check's summary, cut to
// at most min(maxRunes, 200) runes (200 when maxRunes is not positive),
// instead of its length.
func WithLogInputs(maxRunes int) Option {
	if maxRunes <= 0 || maxRunes > agenttrust.MaxSummaryRunes {
		maxRunes = agenttrust.MaxSummaryRunes
	}
	return func(o *options) {
		o.summarize = func(_, input string) string { return guard.TruncateRunes(input, maxRunes) }
	}
}

// WithSummarizer computes the check's summary from the tool name and input;
// the result is cut to 200 runes.
func WithSummarizer(fn func(tool, input string) string) Option {
	return func(o *options) {
		if fn != nil {
			o.summarize = fn
		}
	}
}

// WithActionEffect sets the effect sent with the checks of the wrapped
// tool (with WrapTools: of every tool without an entry in
// WithActionEffects).
func WithActionEffect(e guard.Effect) Option { return func(o *options) { o.effect = e } }

// WithActionEffects sets the effects of several tools, keyed by tool name.
// The map is copied.
func WithActionEffects(m map[string]guard.Effect) Option {
	c := make(map[string]guard.Effect, len(m))
	for k, v := range m {
		c[k] = v
	}
	return func(o *options) {
		if o.effects == nil {
			o.effects = map[string]guard.Effect{}
		}
		for k, v := range c {
			o.effects[k] = v
		}
	}
}

func buildOptions(opts []Option) options {
	var o options
	for _, fn := range opts {
		if fn != nil {
			fn(&o)
		}
	}
	return o
}

// guardedTool is a tool whose Call is checked and reported.
type guardedTool struct {
	inner     tools.Tool
	g         *guard.Guard
	effect    guard.Effect
	observe   func(*guard.DeniedError) string
	summarize func(tool, input string) string
}

// WrapTool returns t guarded by g: every Call is checked first, and the
// inner tool runs only when the Guardian allowed it. Name and Description are
// t's. All tools of one run should share one Guard.
func WrapTool(t tools.Tool, g *guard.Guard, opts ...Option) tools.Tool {
	return wrap(t, g, buildOptions(opts))
}

// WrapTools wraps every tool of ts with the same Guard and options and
// returns a new slice; ts is not modified.
func WrapTools(ts []tools.Tool, g *guard.Guard, opts ...Option) []tools.Tool {
	o := buildOptions(opts)
	out := make([]tools.Tool, len(ts))
	for i, t := range ts {
		out[i] = wrap(t, g, o)
	}
	return out
}

func wrap(t tools.Tool, g *guard.Guard, o options) *guardedTool {
	effect := o.effect
	if e, ok := o.effects[t.Name()]; ok {
		effect = e
	}
	return &guardedTool{inner: t, g: g, effect: effect, observe: o.observation, summarize: o.summarize}
}

// Name returns the inner tool's name.
func (t *guardedTool) Name() string { return t.inner.Name() }

// Description returns the inner tool's description.
func (t *guardedTool) Description() string { return t.inner.Description() }

// Call checks the tool with the Guardian and, when allowed, runs the inner
// tool and reports its duration and outcome. The inner tool's output and
// error are returned unchanged.
func (t *guardedTool) Call(ctx context.Context, input string) (string, error) {
	name := t.inner.Name()
	summary := guard.LengthSummary(input)
	if t.summarize != nil {
		summary = guard.TruncateRunes(t.summarize(name, input), agenttrust.MaxSummaryRunes)
	}
	var copts []guard.CheckOption
	if t.effect != "" {
		copts = append(copts, guard.WithEffect(t.effect))
	}
	d, err := t.g.Check(ctx, name, summary, copts...)
	if err == nil && !d.Allowed {
		err = guard.DenialError(name, d) // a Guard without BlockOnDeny: still a denial
	}
	if err != nil {
		var denied *guard.DeniedError
		if t.observe != nil && errors.As(err, &denied) {
			return t.observe(denied), nil
		}
		return "", err
	}
	start := time.Now()
	out, err := t.inner.Call(ctx, input)
	elapsed := time.Since(start)
	if err != nil {
		t.g.Report(guard.ToolError(name, elapsed, err))
	} else {
		t.g.Report(guard.ToolEnd(name, elapsed))
	}
	return out, err
}

// Handler is a langchaingo callbacks.Handler that adds tool_start events
// for wrapped tools and flushes telemetry, without waiting, at the end of a
// run. It cannot block a tool; WrapTool does. Attach it with
// agents.WithCallbacksHandler on agents.NewExecutor, combined with other
// handlers through callbacks.CombiningHandler. It never closes the Guard.
// A Handler is immutable and safe for concurrent runs.
type Handler struct {
	callbacks.SimpleHandler
	g     *guard.Guard
	names map[string]string // upper-cased name -> registered name
}

var _ callbacks.Handler = (*Handler)(nil)

// NewHandler returns a Handler for the tools wrapped with g.
func NewHandler(g *guard.Guard, wrapped []tools.Tool) *Handler {
	names := make(map[string]string, len(wrapped))
	for _, t := range wrapped {
		names[strings.ToUpper(t.Name())] = t.Name()
	}
	return &Handler{g: g, names: names}
}

// HandleAgentAction reports tool_start when the action names a wrapped tool
// (case-insensitively, as the executor matches). The action's input and log
// are never read.
func (h *Handler) HandleAgentAction(_ context.Context, action schema.AgentAction) {
	if name, ok := h.names[strings.ToUpper(action.Tool)]; ok {
		h.g.Report(guard.ToolStart(name))
	}
}

// HandleAgentFinish asks the Guard to send pending telemetry (no waiting).
func (h *Handler) HandleAgentFinish(context.Context, schema.AgentFinish) { h.g.FlushAsync() }

// HandleChainError asks the Guard to send pending telemetry (no waiting);
// it also fires when a wrapped tool returned a denial error.
func (h *Handler) HandleChainError(context.Context, error) { h.g.FlushAsync() }
