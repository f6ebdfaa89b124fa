package guard

import (
	"context"
	"errors"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
)

// ToolOption configures a ToolRunner: how a tool's input is summarised,
// which effect is sent with its checks and what a denial becomes. The
// framework integrations (langchaingo, Genkit, Eino) accept these options.
type ToolOption func(*toolConfig)

type toolConfig struct {
	observation func(*DeniedError) string
	summarize   func(tool, input string) string
	effect      Effect
	effects     map[string]Effect
}

// DefaultDenialObservation is the text WithDenialAsObservation(nil) gives
// the model: `Tool "<name>" was denied by policy.`, without the reason or
// the check id.
func DefaultDenialObservation(d *DeniedError) string {
	return `Tool "` + d.Tool + `" was denied by policy.`
}

// WithDenialAsObservation turns a denial into text for the model instead of
// an error that ends the agent's run: ToolRunner.Run then returns
// format(denial) with a nil error, and the model may change course. A nil
// format uses DefaultDenialObservation. Elevations, an unavailable Guardian
// (fail-closed), API errors and the caller's cancellation are still errors.
func WithDenialAsObservation(format func(*DeniedError) string) ToolOption {
	if format == nil {
		format = DefaultDenialObservation
	}
	return func(c *toolConfig) { c.observation = format }
}

// WithLogInputs sends the tool's input itself as the check's summary, cut
// to at most min(maxRunes, 200) runes (200 when maxRunes is not positive),
// instead of its length. Without it (or WithSummarizer) only "[N chars]"
// leaves the process.
func WithLogInputs(maxRunes int) ToolOption {
	if maxRunes <= 0 || maxRunes > agenttrust.MaxSummaryRunes {
		maxRunes = agenttrust.MaxSummaryRunes
	}
	return func(c *toolConfig) {
		c.summarize = func(_, input string) string { return TruncateRunes(input, maxRunes) }
	}
}

// WithSummarizer computes the check's summary from the tool name and input;
// the result is cut to 200 runes. A nil fn leaves the summary unchanged.
func WithSummarizer(fn func(tool, input string) string) ToolOption {
	return func(c *toolConfig) {
		if fn != nil {
			c.summarize = fn
		}
	}
}

// WithActionEffect sets the effect sent with the checks of every tool
// without an entry in WithActionEffects.
func WithActionEffect(e Effect) ToolOption { return func(c *toolConfig) { c.effect = e } }

// WithActionEffects sets the effects of several tools, keyed by tool name.
// The map is copied.
func WithActionEffects(m map[string]Effect) ToolOption {
	cp := make(map[string]Effect, len(m))
	for k, v := range m {
		cp[k] = v
	}
	return func(c *toolConfig) {
		if c.effects == nil {
			c.effects = make(map[string]Effect, len(cp))
		}
		for k, v := range cp {
			c.effects[k] = v
		}
	}
}

// ToolRunner is the step every guarded tool call goes through: check with
// the Guardian, never run a tool that was not allowed, then run it and
// report tool_end or tool_error with its duration. Framework integrations
// build one per wrapped tool set; applications with their own tool loop can
// use it directly. A ToolRunner is immutable and safe for concurrent use.
type ToolRunner struct {
	g   *Guard
	cfg toolConfig
}

// NewToolRunner returns a ToolRunner for g. It fails, before any I/O, when g
// is nil. Nil options are ignored.
func NewToolRunner(g *Guard, opts ...ToolOption) (*ToolRunner, error) {
	if g == nil {
		return nil, validationErr("nil guard")
	}
	r := &ToolRunner{g: g}
	for _, o := range opts {
		if o != nil {
			o(&r.cfg)
		}
	}
	return r, nil
}

// Guard returns the Guard the runner checks and reports with.
func (r *ToolRunner) Guard() *Guard { return r.g }

// Summary returns the summary sent with the check of tool for input:
// LengthSummary(input) unless WithLogInputs or WithSummarizer is set, and
// never more than 200 runes.
func (r *ToolRunner) Summary(tool, input string) string {
	if r.cfg.summarize == nil {
		return LengthSummary(input)
	}
	return TruncateRunes(r.cfg.summarize(tool, input), agenttrust.MaxSummaryRunes)
}

// Effect returns the effect configured for tool, "" when none is.
func (r *ToolRunner) Effect(tool string) Effect {
	if e, ok := r.cfg.effects[tool]; ok {
		return e
	}
	return r.cfg.effect
}

// Run checks tool with the Guardian and runs it only when the check allowed
// it:
//
//   - allowed (FailedOpen included): run is called with ctx, its duration
//     is measured around run alone and reported as tool_end (nil error) or
//     tool_error (the error's type, never its text); run's error is
//     returned unchanged and ran is true;
//   - denied, with WithDenialAsObservation: run is not called; Run returns
//     the observation text, ran false and a nil error;
//   - otherwise run is not called and the error is returned: a
//     *DeniedError (also for a Guard built without BlockOnDeny), an
//     *ElevationRequiredError, an *UnavailableError (fail-closed), an API
//     error or ctx's error.
//
// input is only used for the summary. A nil ctx, a nil run or a nil
// runner is a validation error.
func (r *ToolRunner) Run(ctx context.Context, tool, input string, run func(context.Context) error) (observation string, ran bool, err error) {
	if r == nil || r.g == nil {
		return "", false, validationErr("tool " + quoteTool(tool) + " is not guarded: nil guard")
	}
	if run == nil {
		return "", false, validationErr("nil tool function")
	}
	var copts []CheckOption
	if e := r.Effect(tool); e != "" {
		copts = append(copts, WithEffect(e))
	}
	d, err := r.g.Check(ctx, tool, r.Summary(tool, input), copts...)
	if err == nil && !d.Allowed {
		err = DenialError(tool, d) // a Guard without BlockOnDeny: still a denial
	}
	if err != nil {
		if r.cfg.observation != nil {
			var elevation *ElevationRequiredError
			var denied *DeniedError
			if !errors.As(err, &elevation) && errors.As(err, &denied) {
				return r.cfg.observation(denied), false, nil
			}
		}
		return "", false, err
	}
	start := time.Now()
	err = run(ctx)
	elapsed := time.Since(start)
	if err != nil {
		r.g.Report(ToolError(tool, elapsed, err))
	} else {
		r.g.Report(ToolEnd(tool, elapsed))
	}
	return "", true, err
}
