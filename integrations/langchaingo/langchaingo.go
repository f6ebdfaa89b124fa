// Package agenttrustlangchaingo enforces AgentTrust guard checks on langchaingo tools
// and reports their telemetry.
//
// Enforcement lives in the tool: WrapTool (or WrapTools) returns a tool whose
// Call asks the Guardian first and calls the inner tool only when the check
// allowed it. A langchaingo callback handler cannot stop a tool, so NewHandler
// only adds tool_start events and an end-of-run flush.
//
//	g, _ := guard.New(client, agentID)
//	defer g.Close(ctx)
//	wrapped := agenttrustlangchaingo.WrapTools(myTools, g)
//	h := agenttrustlangchaingo.NewHandler(g, wrapped)
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
package agenttrustlangchaingo

import (
	"context"
	"strings"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/guard"
	"github.com/tmc/langchaingo/callbacks"
	"github.com/tmc/langchaingo/schema"
	"github.com/tmc/langchaingo/tools"
)

// Option configures WrapTool and WrapTools. The guard package's
// ToolOptions are Options, so guard.WithLogInputs and the functions below
// are interchangeable.
type Option = guard.ToolOption

// DefaultDenialObservation is the observation WithDenialAsObservation(nil)
// returns: `Tool "<name>" was denied by policy.`, without the reason or the
// check id.
func DefaultDenialObservation(d *guard.DeniedError) string { return guard.DefaultDenialObservation(d) }

// WithDenialAsObservation makes a denied tool return (format(err), nil)
// instead of ("", err), so the denial becomes an observation for the model
// rather than the end of the run. A nil format uses
// DefaultDenialObservation. Elevations and every other failure are still
// returned as errors.
func WithDenialAsObservation(format func(*guard.DeniedError) string) Option {
	return guard.WithDenialAsObservation(format)
}

// WithLogInputs sends the tool's input itself as the check's summary, cut to
// at most min(maxRunes, 200) runes (200 when maxRunes is not positive),
// instead of its length.
func WithLogInputs(maxRunes int) Option { return guard.WithLogInputs(maxRunes) }

// WithSummarizer computes the check's summary from the tool name and input;
// the result is cut to 200 runes.
func WithSummarizer(fn func(tool, input string) string) Option { return guard.WithSummarizer(fn) }

// WithActionEffect sets the effect sent with the checks of the wrapped
// tool (with WrapTools: of every tool without an entry in
// WithActionEffects).
func WithActionEffect(e guard.Effect) Option { return guard.WithActionEffect(e) }

// WithActionEffects sets the effects of several tools, keyed by tool name.
// The map is copied.
func WithActionEffects(m map[string]guard.Effect) Option { return guard.WithActionEffects(m) }

// guardedTool is a tool whose Call is checked and reported. A guardedTool
// built from invalid arguments holds err and never runs anything.
type guardedTool struct {
	inner  tools.Tool
	runner *guard.ToolRunner
	err    error
}

// WrapTool returns t guarded by g: every Call is checked first, and the
// inner tool runs only when the Guardian allowed it. Name and Description are
// t's. All tools of one run should share one Guard.
//
// Wrapping a tool returned by WrapTool wraps its inner tool again, so only
// the new Guard and options apply. A nil t or a nil g gives a tool whose
// Call always returns a validation error and runs nothing.
func WrapTool(t tools.Tool, g *guard.Guard, opts ...Option) tools.Tool {
	runner, err := guard.NewToolRunner(g, opts...)
	return wrap(t, runner, err)
}

// WrapTools wraps every tool of ts with the same Guard and options and
// returns a new slice; ts is not modified. Each element is wrapped as
// WrapTool does, so a nil element becomes a tool that never runs.
func WrapTools(ts []tools.Tool, g *guard.Guard, opts ...Option) []tools.Tool {
	runner, err := guard.NewToolRunner(g, opts...)
	out := make([]tools.Tool, len(ts))
	for i, t := range ts {
		out[i] = wrap(t, runner, err)
	}
	return out
}

func wrap(t tools.Tool, runner *guard.ToolRunner, err error) *guardedTool {
	if gt, ok := t.(*guardedTool); ok && gt != nil {
		t = gt.inner // rewrap: the new guard only, never two checks per call
	}
	if err == nil && t == nil {
		err = agenttrust.NewError(agenttrust.CodeValidation, "langchaingo: nil tool", nil)
	}
	if err != nil {
		return &guardedTool{inner: t, err: err}
	}
	return &guardedTool{inner: t, runner: runner}
}

// Name returns the inner tool's name ("" for a nil tool).
func (t *guardedTool) Name() string {
	if t.inner == nil {
		return ""
	}
	return t.inner.Name()
}

// Description returns the inner tool's description ("" for a nil tool).
func (t *guardedTool) Description() string {
	if t.inner == nil {
		return ""
	}
	return t.inner.Description()
}

// Call checks the tool with the Guardian and, when allowed, runs the inner
// tool and reports its duration and outcome. The inner tool's output and
// error are returned unchanged.
func (t *guardedTool) Call(ctx context.Context, input string) (string, error) {
	if t.err != nil {
		return "", t.err
	}
	var out string
	obs, ran, err := t.runner.Run(ctx, t.inner.Name(), input, func(ctx context.Context) error {
		var err error
		out, err = t.inner.Call(ctx, input)
		return err
	})
	if !ran {
		return obs, err
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
// A nil g gives an inert Handler; nil tools and tools without a name are
// skipped. The zero Handler is inert too.
func NewHandler(g *guard.Guard, wrapped []tools.Tool) *Handler {
	names := make(map[string]string, len(wrapped))
	for _, t := range wrapped {
		if t == nil {
			continue
		}
		if name := t.Name(); name != "" {
			names[strings.ToUpper(name)] = name
		}
	}
	return &Handler{g: g, names: names}
}

// HandleAgentAction reports tool_start when the action names a wrapped tool
// (case-insensitively, as the executor matches). The action's input and log
// are never read.
func (h *Handler) HandleAgentAction(_ context.Context, action schema.AgentAction) {
	if h == nil || h.g == nil {
		return
	}
	if name, ok := h.names[strings.ToUpper(action.Tool)]; ok {
		h.g.Report(guard.ToolStart(name))
	}
}

// HandleAgentFinish asks the Guard to send pending telemetry (no waiting).
func (h *Handler) HandleAgentFinish(context.Context, schema.AgentFinish) { h.flush() }

// HandleChainError asks the Guard to send pending telemetry (no waiting);
// it also fires when a wrapped tool returned a denial error.
func (h *Handler) HandleChainError(context.Context, error) { h.flush() }

func (h *Handler) flush() {
	if h != nil && h.g != nil {
		h.g.FlushAsync()
	}
}
