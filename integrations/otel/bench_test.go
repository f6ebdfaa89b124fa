package agenttrustotel_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/guard"
	agenttrustotel "github.com/agenttrustid/agenttrust-go/integrations/otel"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

const benchReply = `{"allowed":true,"check_id":"chk-1","confidence":0.98,"guard_tier":"fast","latency_ms":3,"reason":"read-only tool","elevation_required":false}`

// benchClient returns a client for a loopback server answering every check.
// mode "otel" observes it with a no-op span exporter behind the SDK's batch
// processor and a metric reader that is never collected; "metrics" with the
// same metrics and a no-op tracer provider; "none" not at all.
func benchClient(b *testing.B, mode string) *agenttrust.Client {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, benchReply)
	}))
	b.Cleanup(srv.Close)
	opts := []agenttrust.Option{agenttrust.WithBaseURL(srv.URL), agenttrust.WithAuthURL(srv.URL), agenttrust.WithAPIKey("sk_bench")}
	if mode != "none" {
		var tp trace.TracerProvider = noop.NewTracerProvider()
		if mode == "otel" {
			sdk := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
			b.Cleanup(func() { _ = sdk.Shutdown(context.Background()) })
			tp = sdk
		}
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
		obs, err := agenttrustotel.New(agenttrustotel.WithTracerProvider(tp), agenttrustotel.WithMeterProvider(mp))
		require.NoError(b, err)
		opts = append(opts, agenttrust.WithObserver(obs))
	}
	c, err := agenttrust.New(opts...)
	require.NoError(b, err)
	return c
}

// BenchmarkActionsCheck compares a loopback Actions.Check without an
// observer, with the observer's metrics only, and with traces and metrics.
func BenchmarkActionsCheck(b *testing.B) {
	for _, mode := range []string{"none", "metrics", "otel"} {
		b.Run("obs="+mode, func(b *testing.B) {
			c := benchClient(b, mode)
			p := agenttrust.ActionCheckParams{AgentID: "agent-123", ToolName: "read_file", ToolInputSummary: "[5 chars]", SessionID: "s1"}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			cpu := cpuTime()
			defer func() { reportCPU(b, cpu) }()
			// A plain check inside the timed loop: testify calls b.Helper on
			// every assertion, a stack walk that would be measured too.
			for i := 0; i < b.N; i++ {
				if r, err := c.Actions.Check(ctx, p); err != nil || !r.Allowed {
					b.Fatal(r, err)
				}
			}
		})
	}
}

// BenchmarkGuardCheck is the same through a Guard: a check span around the
// call span.
func BenchmarkGuardCheck(b *testing.B) {
	for _, mode := range []string{"none", "metrics", "otel"} {
		b.Run("obs="+mode, func(b *testing.B) {
			g, err := guard.New(benchClient(b, mode), "agent-123")
			require.NoError(b, err)
			defer g.Close(context.Background())
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			cpu := cpuTime()
			defer func() { reportCPU(b, cpu) }()
			// A plain check inside the timed loop, as above.
			for i := 0; i < b.N; i++ {
				if _, err := g.Check(ctx, "read_file", "[5 chars]"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkObserverHooks measures the observer's own cost without I/O: the
// hooks a loopback Actions.Check calls ("call") and, for a guard check, the
// check hooks around them ("check"), with the SDK's tracer provider
// ("tp=sdk") or a no-op one ("tp=noop": metrics only), and with the SDK's
// provider the same spans without any hook ("hooks=none", see
// benchSpansAlone). Compared with
// BenchmarkActionsCheck and BenchmarkGuardCheck (obs=none) in the same run,
// it gives the observer's share of a check on a loaded machine, where
// end-to-end timings vary too much to show a few percent.
func BenchmarkObserverHooks(b *testing.B) {
	req := agenttrust.RequestInfo{Operation: "actions.check", Method: "POST", URLTemplate: "/api/v1/agenttrust/check",
		Scheme: "http", ServerAddress: "127.0.0.1", ServerPort: 8082}
	check := agenttrust.CheckInfo{AgentID: "agent-123", Tool: "read_file", Summary: "[5 chars]"}
	for _, tpName := range []string{"sdk", "noop"} {
		b.Run("tp="+tpName, func(b *testing.B) {
			var tp trace.TracerProvider = noop.NewTracerProvider()
			if tpName == "sdk" {
				sdk := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
				defer sdk.Shutdown(context.Background())
				tp = sdk
			}
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			defer mp.Shutdown(context.Background())
			obs, err := agenttrustotel.New(agenttrustotel.WithTracerProvider(tp), agenttrustotel.WithMeterProvider(mp))
			require.NoError(b, err)
			if tpName == "sdk" {
				b.Run("hooks=none/spans=call", func(b *testing.B) { benchSpansAlone(b, tp, false) })
				b.Run("hooks=none/spans=check", func(b *testing.B) { benchSpansAlone(b, tp, true) })
			}
			for _, withCheck := range []bool{false, true} {
				name := "hooks=call"
				if withCheck {
					name = "hooks=check"
				}
				b.Run(name, func(b *testing.B) {
					ctx := context.Background()
					b.ReportAllocs()
					cpu := cpuTime()
					defer func() { reportCPU(b, cpu) }()
					for i := 0; i < b.N; i++ {
						cctx := ctx
						if withCheck {
							cctx = obs.CheckStart(ctx, check)
						}
						rctx := obs.RequestStart(cctx, req)
						h := make(http.Header, 2)
						obs.AttemptStart(rctx, req, 1, h)
						obs.AttemptDone(rctx, req, agenttrust.AttemptResult{Attempt: 1, Status: 200, Duration: 50 * time.Microsecond})
						obs.RequestDone(rctx, req, agenttrust.RequestResult{Status: 200, Attempts: 1, Duration: 50 * time.Microsecond})
						if withCheck {
							obs.CheckDone(cctx, check, agenttrust.CheckResult{Outcome: agenttrust.CheckAllowed, Tier: "fast",
								CheckID: "chk-1", Duration: 60 * time.Microsecond})
						}
					}
				})
			}
		})
	}
}

// benchSpansAlone is the floor under BenchmarkObserverHooks with the SDK's
// tracer provider: the spans the observer records, with the same kinds and
// attributes, started and ended directly, with no hook, metric or
// propagation. What the hooks cost above it is the observer's own.
func benchSpansAlone(b *testing.B, tp trace.TracerProvider, withCheck bool) {
	tracer := tp.Tracer("floor")
	start := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("http.request.method", "POST"), attribute.String("server.address", "127.0.0.1"),
		attribute.Int("server.port", 8082), attribute.String("agenttrust.operation", "actions.check"),
		attribute.String("url.template", "/api/v1/agenttrust/check"), attribute.String("url.scheme", "http"))}
	end := []attribute.KeyValue{attribute.Int("http.response.status_code", 200)}
	checkStart := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(
		attribute.String("agenttrust.tool.name", "read_file"), attribute.String("agenttrust.agent.id", "agent-123"))}
	ctx := context.Background()
	b.ReportAllocs()
	cpu := cpuTime()
	defer func() { reportCPU(b, cpu) }()
	for i := 0; i < b.N; i++ {
		cctx := ctx
		var check trace.Span
		if withCheck {
			cctx, check = tracer.Start(ctx, "agenttrust.guard.check", checkStart...)
		}
		_, call := tracer.Start(cctx, "agenttrust.actions.check", start...)
		call.SetAttributes(end...)
		call.End()
		if withCheck {
			check.SetAttributes(attribute.String("agenttrust.check.outcome", "allowed"),
				attribute.String("agenttrust.guard.tier", "fast"), attribute.String("agenttrust.check.id", "chk-1"))
			check.End()
		}
	}
}
