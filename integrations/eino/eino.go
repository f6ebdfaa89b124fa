// Package agenttrusteino enforces AgentTrust guard checks on the tools of CloudWeGo
// Eino (github.com/cloudwego/eino) and reports their telemetry.
//
// Every call of a guarded tool asks the Guardian first; the tool runs only
// when the check allowed it, and its duration and outcome are reported as
// tool_end or tool_error. All tools of one agent run share one guard.Guard.
// There are two ways to guard tools; use one of them, not both, or every
// call is checked twice:
//
//   - Middleware guards every tool of a ToolsNode (invokable, streamable and
//     enhanced tools alike), set in compose.ToolsNodeConfig.ToolCallMiddlewares,
//     which the ReAct agent and the ADK's ChatModelAgent also take;
//   - WrapTool and WrapTools wrap invokable tools one by one, for any code
//     that calls InvokableRun.
//
// NewHandler adds tool_start events and an end-of-run flush through Eino's
// callbacks; it cannot stop a tool.
//
//	g, _ := guard.New(client, agentID)
//	defer g.Close(ctx)
//	mw, _ := agenttrusteino.Middleware(g)
//	agent, _ := react.NewAgent(ctx, &react.AgentConfig{
//		ToolCallingModel: chatModel,
//		ToolsConfig: compose.ToolsNodeConfig{Tools: tools, ToolCallMiddlewares: []compose.ToolMiddleware{mw}},
//	})
//	msg, err := agent.Generate(ctx, input, agent.WithComposeOptions(compose.WithCallbacks(agenttrusteino.NewHandler(g))))
//	var denied *guard.DeniedError
//	if errors.As(err, &denied) { ... }
//
// Middleware, WrapTool and WrapTools take the guard package's tool options:
// guard.WithDenialAsObservation, guard.WithLogInputs, guard.WithSummarizer,
// guard.WithActionEffect and guard.WithActionEffects.
//
// By default a denial ends the run with a *guard.DeniedError, which Eino
// wraps so that errors.As finds it. With guard.WithDenialAsObservation the
// denial becomes the tool's result instead, a short text the model can read
// and react to. Elevations, an unavailable Guardian (when the Guard is
// fail-closed), API errors and the caller's cancellation always end the run
// with an error.
//
// For a streaming tool the reported duration ends when the tool returns its
// stream, not when the stream is drained.
//
// Privacy: the tool's input is its JSON arguments. By default only
// "[N chars]" is sent for it; the arguments themselves only with
// guard.WithLogInputs or a guard.WithSummarizer, cut to 200 runes. The
// output and the error text are never sent.
package agenttrusteino

import (
	"context"
	"reflect"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/guard"
	"github.com/cloudwego/eino/callbacks"
	"github.com/cloudwego/eino/components"
	"github.com/cloudwego/eino/components/tool"
	"github.com/cloudwego/eino/compose"
	"github.com/cloudwego/eino/schema"
)

func validation(msg string) error {
	return agenttrust.NewError(agenttrust.CodeValidation, "eino: "+msg, nil)
}

// Middleware returns a ToolsNode middleware that checks every tool call
// with g before the tool runs (see the package documentation). A nil g is a
// validation error.
func Middleware(g *guard.Guard, opts ...guard.ToolOption) (compose.ToolMiddleware, error) {
	r, err := guard.NewToolRunner(g, opts...)
	if err != nil {
		return compose.ToolMiddleware{}, err
	}
	text := func(s string) *schema.ToolResult {
		return &schema.ToolResult{Parts: []schema.ToolOutputPart{{Type: schema.ToolPartTypeText, Text: s}}}
	}
	return compose.ToolMiddleware{
		Invokable: func(next compose.InvokableToolEndpoint) compose.InvokableToolEndpoint {
			return func(ctx context.Context, in *compose.ToolInput) (*compose.ToolOutput, error) {
				return through(ctx, r, in, next, func(s string) *compose.ToolOutput { return &compose.ToolOutput{Result: s} })
			}
		},
		Streamable: func(next compose.StreamableToolEndpoint) compose.StreamableToolEndpoint {
			return func(ctx context.Context, in *compose.ToolInput) (*compose.StreamToolOutput, error) {
				return through(ctx, r, in, next, func(s string) *compose.StreamToolOutput {
					return &compose.StreamToolOutput{Result: schema.StreamReaderFromArray([]string{s})}
				})
			}
		},
		EnhancedInvokable: func(next compose.EnhancedInvokableToolEndpoint) compose.EnhancedInvokableToolEndpoint {
			return func(ctx context.Context, in *compose.ToolInput) (*compose.EnhancedInvokableToolOutput, error) {
				return through(ctx, r, in, next, func(s string) *compose.EnhancedInvokableToolOutput {
					return &compose.EnhancedInvokableToolOutput{Result: text(s)}
				})
			}
		},
		EnhancedStreamable: func(next compose.EnhancedStreamableToolEndpoint) compose.EnhancedStreamableToolEndpoint {
			return func(ctx context.Context, in *compose.ToolInput) (*compose.EnhancedStreamableToolOutput, error) {
				return through(ctx, r, in, next, func(s string) *compose.EnhancedStreamableToolOutput {
					return &compose.EnhancedStreamableToolOutput{Result: schema.StreamReaderFromArray([]*schema.ToolResult{text(s)})}
				})
			}
		},
	}, nil
}

// through runs one endpoint call through the runner; observe turns a
// denial's text into the endpoint's output.
func through[O any](ctx context.Context, r *guard.ToolRunner, in *compose.ToolInput,
	next func(context.Context, *compose.ToolInput) (O, error), observe func(string) O) (O, error) {
	var out O
	if in == nil {
		return out, validation("nil tool input")
	}
	obs, ran, err := r.Run(ctx, in.Name, in.Arguments, func(ctx context.Context) error {
		var err error
		out, err = next(ctx, in)
		return err
	})
	if !ran && err == nil {
		return observe(obs), nil
	}
	return out, err
}

// guardedTool is an invokable tool whose calls are checked and reported.
type guardedTool struct {
	inner  tool.InvokableTool
	name   string
	runner *guard.ToolRunner
}

var (
	_ tool.InvokableTool = (*guardedTool)(nil)
	_ components.Typer   = (*guardedTool)(nil)
	_ components.Checker = (*guardedTool)(nil)
)

// WrapTool returns t guarded by g: every InvokableRun is checked first, and
// t runs only when the Guardian allowed it. Info is t's. Wrapping a tool
// WrapTool returned wraps its inner tool again, so only the new Guard and
// options apply. ctx is used to read t's name from its Info. A nil t or g,
// or a t whose Info fails or has no name, is an error.
func WrapTool(ctx context.Context, t tool.InvokableTool, g *guard.Guard, opts ...guard.ToolOption) (tool.InvokableTool, error) {
	r, err := guard.NewToolRunner(g, opts...)
	if err != nil {
		return nil, err
	}
	return wrap(ctx, t, r)
}

// WrapTools wraps every tool of ts with the same Guard and options, as
// WrapTool does, and returns a new slice for compose.ToolsNodeConfig.Tools.
// Every tool must be invokable; guard other kinds with Middleware. It fails
// on the first invalid tool, wrapping none.
func WrapTools(ctx context.Context, ts []tool.BaseTool, g *guard.Guard, opts ...guard.ToolOption) ([]tool.BaseTool, error) {
	r, err := guard.NewToolRunner(g, opts...)
	if err != nil {
		return nil, err
	}
	out := make([]tool.BaseTool, len(ts))
	for i, bt := range ts {
		it, ok := bt.(tool.InvokableTool)
		if !ok {
			if bt == nil {
				return nil, validation("nil tool")
			}
			return nil, validation("a tool is not a tool.InvokableTool; guard it with Middleware")
		}
		w, err := wrap(ctx, it, r)
		if err != nil {
			return nil, err
		}
		out[i] = w
	}
	return out, nil
}

func wrap(ctx context.Context, t tool.InvokableTool, r *guard.ToolRunner) (*guardedTool, error) {
	if ctx == nil {
		return nil, validation("nil context")
	}
	if gt, ok := t.(*guardedTool); ok && gt != nil {
		t = gt.inner
	}
	if isNil(t) {
		return nil, validation("nil tool")
	}
	info, err := t.Info(ctx)
	if err != nil {
		return nil, err
	}
	if info == nil || info.Name == "" {
		return nil, validation("tool without a name")
	}
	return &guardedTool{inner: t, name: info.Name, runner: r}, nil
}

// isNil reports whether t is nil or holds a nil pointer.
func isNil(t tool.InvokableTool) bool {
	if t == nil {
		return true
	}
	v := reflect.ValueOf(t)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// Info returns the inner tool's Info.
func (t *guardedTool) Info(ctx context.Context) (*schema.ToolInfo, error) { return t.inner.Info(ctx) }

// InvokableRun checks the tool with the Guardian and, when allowed, runs
// the inner tool and reports its duration and outcome. The inner tool's
// result and error are returned unchanged.
func (t *guardedTool) InvokableRun(ctx context.Context, argumentsInJSON string, opts ...tool.Option) (string, error) {
	var out string
	obs, ran, err := t.runner.Run(ctx, t.name, argumentsInJSON, func(ctx context.Context) error {
		var err error
		out, err = t.inner.InvokableRun(ctx, argumentsInJSON, opts...)
		return err
	})
	if !ran {
		return obs, err
	}
	return out, err
}

// GetType returns the inner tool's type for Eino's callbacks, "" when it
// has none.
func (t *guardedTool) GetType() string {
	if ty, ok := t.inner.(components.Typer); ok {
		return ty.GetType()
	}
	return ""
}

// IsCallbacksEnabled reports whether the inner tool runs Eino's callbacks
// itself, so that Eino neither skips nor doubles them.
func (t *guardedTool) IsCallbacksEnabled() bool {
	if c, ok := t.inner.(components.Checker); ok {
		return c.IsCallbacksEnabled()
	}
	return false
}

// NewHandler returns an Eino callback handler that reports tool_start when
// a tool starts (by the name Eino runs it under; a start without an end
// means the guard did not let it run) and asks g to send pending telemetry,
// without waiting, when a graph or chain ends (Invoke, Generate) or fails. It never stops a
// tool and never closes the Guard. Pass it with compose.WithCallbacks. A nil
// g gives a handler that does nothing.
func NewHandler(g *guard.Guard) callbacks.Handler {
	isRun := func(info *callbacks.RunInfo) bool {
		if info == nil {
			return false
		}
		switch info.Component {
		case compose.ComponentOfGraph, compose.ComponentOfChain, compose.ComponentOfWorkflow:
			return true
		}
		return false
	}
	return callbacks.NewHandlerBuilder().
		OnStartFn(func(ctx context.Context, info *callbacks.RunInfo, _ callbacks.CallbackInput) context.Context {
			if g != nil && info != nil && info.Component == components.ComponentOfTool && info.Name != "" {
				g.Report(guard.ToolStart(info.Name))
			}
			return ctx
		}).
		OnEndFn(func(ctx context.Context, info *callbacks.RunInfo, _ callbacks.CallbackOutput) context.Context {
			if g != nil && isRun(info) {
				g.FlushAsync()
			}
			return ctx
		}).
		OnErrorFn(func(ctx context.Context, info *callbacks.RunInfo, _ error) context.Context {
			if g != nil && isRun(info) {
				g.FlushAsync()
			}
			return ctx
		}).
		Build()
}
