// Package agenttrustgenkit enforces AgentTrust guard checks on the tools of Genkit
// for Go (github.com/firebase/genkit/go) and reports their telemetry.
//
// Every call of a guarded tool asks the Guardian first; the tool runs only
// when the check allowed it, and its duration and outcome are reported as
// tool_end or tool_error. All tools of one agent run share one guard.Guard.
//
// Its package name is agenttrustgenkit, so that it sits next to Genkit's own
// genkit package without an alias:
//
//	import agenttrustgenkit "github.com/agenttrustid/agenttrust-go/integrations/genkit"
//
//	g, _ := guard.New(client, agentID)
//	defer g.Close(ctx)
//	// A registered tool: Generate, prompts and the Dev UI see the guarded one.
//	readFile, err := agenttrustgenkit.DefineTool(gk, g, "read_file", "reads a file", readFileFunc)
//	// An unregistered tool built with ai.NewTool.
//	deleteFile, err := agenttrustgenkit.WrapTool(ai.NewTool("delete_file", "deletes a file", deleteFunc), g)
//	resp, err := agenttrustgenkit.Generate(ctx, gk, ai.WithPrompt(question), ai.WithTools(readFile, deleteFile))
//	var denied *guard.DeniedError
//	if errors.As(err, &denied) { ... }
//
// WrapTool, WrapTools and DefineTool take the guard package's tool options:
// guard.WithDenialAsObservation, guard.WithLogInputs, guard.WithSummarizer,
// guard.WithActionEffect and guard.WithActionEffects.
//
// # Registered tools
//
// Genkit's generate loop runs a tool it finds by name in its registry, so a
// tool registered with genkit.DefineTool under the same name as a wrapped
// one would run instead of it, unchecked. Define registered tools with this
// package's DefineTool, and wrap only unregistered tools (ai.NewTool,
// ai.NewMultipartTool) with WrapTool. Wrapping a tool WrapTool or DefineTool
// returned wraps its inner tool again: only the new Guard applies.
//
// # Denials and errors
//
// By default a denial stops the generate call with an error. Genkit turns a
// tool's error into text, so the typed error is lost on the way; Generate
// (or TrackErrors around any other Genkit call) restores it, and
// errors.As(err, &denied) then finds the *guard.DeniedError (or the inner
// tool's own error). With guard.WithDenialAsObservation the denial becomes
// the tool's output instead, a short text the model can read and react to.
// Elevations, an unavailable Guardian (when the Guard is fail-closed), API
// errors and the caller's cancellation always stop the call with an error.
//
// Genkit v1.4.0 runs the tool requests of one model turn in parallel and,
// when one fails, stops waiting for the others, whose goroutines then stay
// blocked forever. Where a model may request a denied tool together with
// others in one turn, prefer guard.WithDenialAsObservation. It also
// registers an unregistered tool into every Generate call that receives it,
// which is a data race when one tool value goes to concurrent calls: share
// DefineTool's registered tools between concurrent calls, or wrap per call.
//
// # Privacy
//
// The tool's input is its JSON text. By default only "[N chars]" is sent for
// it; the input itself only with guard.WithLogInputs or a
// guard.WithSummarizer, cut to 200 runes. The output and the error text are
// never sent.
package agenttrustgenkit

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/guard"
	"github.com/firebase/genkit/go/ai"
	"github.com/firebase/genkit/go/genkit"
)

func validation(msg string) error {
	return agenttrust.NewError(agenttrust.CodeValidation, "genkit: "+msg, nil)
}

// guardedTool is the ai.Tool WrapTool and DefineTool return: the Genkit tool
// that runs the check, plus the inner tool for rewrapping.
type guardedTool struct {
	ai.Tool
	inner ai.Tool // nil for DefineTool: the inner function is not a tool
}

// WrapTool returns a tool with t's name, description, input schema and
// multipart kind (not its output schema) whose calls are checked with g
// before t runs (see the package documentation).
// The result is not registered: pass it to ai.WithTools. t must not be
// registered with Genkit under its name, or Generate runs the registered
// tool unchecked; use DefineTool for registered tools. A nil t or g is a
// validation error.
func WrapTool(t ai.Tool, g *guard.Guard, opts ...guard.ToolOption) (ai.Tool, error) {
	runner, err := guard.NewToolRunner(g, opts...)
	if err != nil {
		return nil, err
	}
	return wrap(t, runner)
}

// WrapTools wraps every tool of ts with the same Guard and options, as
// WrapTool does, and returns them as tool references for ai.WithTools. It
// fails on the first invalid tool, wrapping none.
func WrapTools(ts []ai.Tool, g *guard.Guard, opts ...guard.ToolOption) ([]ai.ToolRef, error) {
	runner, err := guard.NewToolRunner(g, opts...)
	if err != nil {
		return nil, err
	}
	out := make([]ai.ToolRef, len(ts))
	for i, t := range ts {
		w, err := wrap(t, runner)
		if err != nil {
			return nil, err
		}
		out[i] = w
	}
	return out, nil
}

func wrap(t ai.Tool, runner *guard.ToolRunner) (ai.Tool, error) {
	if gt, ok := t.(*guardedTool); ok && gt != nil {
		if gt.inner == nil {
			return nil, validation("tool " + gt.Name() + " was made by DefineTool and is registered; define it again instead of wrapping it")
		}
		t = gt.inner
	}
	if isNil(t) {
		return nil, validation("nil tool")
	}
	def := t.Definition()
	if def == nil || def.Name == "" {
		return nil, validation("tool without a name")
	}
	var topts []ai.ToolOption
	if def.InputSchema != nil {
		topts = append(topts, ai.WithInputSchema(def.InputSchema))
	}
	inner := t
	runInner := func(tc *ai.ToolContext, input any) (*ai.MultipartToolResponse, error) {
		resp, err := inner.RunRawMultipart(tc, input)
		if err != nil {
			// RunRawMultipart adds "error calling tool <name>: "; report and
			// track the tool's own error.
			if u := errors.Unwrap(err); u != nil && strings.HasPrefix(err.Error(), "error calling tool ") {
				err = u
			}
			return nil, err
		}
		if resp == nil {
			resp = &ai.MultipartToolResponse{}
		}
		return resp, nil
	}
	if multipart, _ := def.Metadata["multipart"].(bool); multipart {
		fn := guarded(runner, def.Name, runInner, func(s string) *ai.MultipartToolResponse {
			return &ai.MultipartToolResponse{Output: s}
		})
		return &guardedTool{Tool: ai.NewMultipartTool(def.Name, def.Description, fn, topts...), inner: inner}, nil
	}
	fn := guarded(runner, def.Name, func(tc *ai.ToolContext, input any) (any, error) {
		resp, err := runInner(tc, input)
		if err != nil {
			return nil, err
		}
		return resp.Output, nil
	}, func(s string) any { return s })
	return &guardedTool{Tool: ai.NewTool(def.Name, def.Description, fn, topts...), inner: inner}, nil
}

// isNil reports whether t is nil or a typed nil pointer (a nil *ai.ToolDef,
// which Genkit itself reports only when the tool is called).
func isNil(t ai.Tool) bool {
	if t == nil {
		return true
	}
	v := reflect.ValueOf(t)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// DefineTool defines and registers a tool with Genkit whose calls are
// checked with g before fn runs; Generate, prompts and the Dev UI find it by
// name like any tool of genkit.DefineTool. Its output is fn's output, or the
// denial text with guard.WithDenialAsObservation. A nil gk, g or fn, or an
// empty name, is a validation error; a name already registered makes Genkit
// panic, as genkit.DefineTool does.
func DefineTool[In, Out any](gk *genkit.Genkit, g *guard.Guard, name, description string, fn ai.ToolFunc[In, Out], opts ...guard.ToolOption) (ai.Tool, error) {
	switch {
	case gk == nil:
		return nil, validation("nil *genkit.Genkit")
	case fn == nil:
		return nil, validation("nil tool function")
	case name == "":
		return nil, validation("empty tool name")
	}
	runner, err := guard.NewToolRunner(g, opts...)
	if err != nil {
		return nil, err
	}
	guardedFn := guarded(runner, name, func(tc *ai.ToolContext, input In) (any, error) {
		return fn(tc, input)
	}, func(s string) any { return s })
	return &guardedTool{Tool: genkit.DefineTool(gk, name, description, guardedFn)}, nil
}

// guarded returns a tool function that runs run through runner, turns a
// denial's text into an output with observe, and records every error it
// returns in the context's tracker (TrackErrors).
func guarded[In, Out any](runner *guard.ToolRunner, name string, run func(*ai.ToolContext, In) (Out, error), observe func(string) Out) func(*ai.ToolContext, In) (Out, error) {
	return func(tc *ai.ToolContext, input In) (Out, error) {
		var out Out
		obs, ran, err := runner.Run(tc, name, inputText(input), func(context.Context) error {
			var err error
			out, err = run(tc, input)
			return err
		})
		switch {
		case err != nil:
			if tr, ok := tc.Value(trackerKey{}).(*tracker); ok {
				tr.add(err)
			}
			var zero Out
			return zero, err
		case !ran:
			return observe(obs), nil
		}
		return out, nil
	}
}

// inputText is the JSON text of a tool's input, as the model wrote it.
func inputText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

type trackerKey struct{}

// tracker collects the errors guarded tools returned under one context.
type tracker struct {
	mu   sync.Mutex
	errs []error
}

func (t *tracker) add(err error) {
	t.mu.Lock()
	t.errs = append(t.errs, err)
	t.mu.Unlock()
}

// toolError is a Genkit error restored with the tool errors behind it.
type toolError struct {
	err    error   // Genkit's error: its text is the message
	causes []error // what the guarded tools returned
}

func (e *toolError) Error() string   { return e.err.Error() }
func (e *toolError) Unwrap() []error { return append(append([]error(nil), e.causes...), e.err) }

// TrackErrors returns a context for a Genkit call (Generate, GenerateText,
// a prompt's Execute, a flow) and a function for that call's error. Genkit
// turns a tool's error into text; the function gives back an error with
// the same message through which errors.Is and errors.As reach the errors
// the guarded tools returned under ctx: the guard's *guard.DeniedError,
// *guard.ElevationRequiredError or *guard.UnavailableError, or the inner
// tool's own error. It returns nil for nil, and err itself when no guarded
// tool failed. Use a new context per call.
func TrackErrors(ctx context.Context) (context.Context, func(err error) error) {
	tr := &tracker{}
	return context.WithValue(ctx, trackerKey{}, tr), func(err error) error {
		if err == nil {
			return nil
		}
		tr.mu.Lock()
		causes := append([]error(nil), tr.errs...)
		tr.mu.Unlock()
		if len(causes) == 0 {
			return err
		}
		return &toolError{err: err, causes: causes}
	}
}

// Generate calls genkit.Generate with TrackErrors, so that errors.As finds
// the typed error of a guarded tool that stopped the generate loop.
func Generate(ctx context.Context, gk *genkit.Genkit, opts ...ai.GenerateOption) (*ai.ModelResponse, error) {
	if ctx == nil {
		return nil, validation("nil context")
	}
	if gk == nil {
		return nil, validation("nil *genkit.Genkit")
	}
	ctx, restore := TrackErrors(ctx)
	resp, err := genkit.Generate(ctx, gk, opts...)
	return resp, restore(err)
}
