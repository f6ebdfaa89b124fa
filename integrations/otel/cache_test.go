package agenttrustotel_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	agenttrustotel "github.com/agenttrustid/agenttrust-go/integrations/otel"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorded is an observer on a span recorder and a manual metric reader,
// for calling the hooks directly.
func recorded(t *testing.T, opts ...agenttrustotel.Option) (*agenttrust.Observer, *tracetest.SpanRecorder, *harness) {
	t.Helper()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	obs, err := agenttrustotel.New(append([]agenttrustotel.Option{
		agenttrustotel.WithTracerProvider(tp), agenttrustotel.WithMeterProvider(mp)}, opts...)...)
	require.NoError(t, err)
	return obs, spans, &harness{reader: reader}
}

// TestSameOperationOnTwoServers: one observer on two clients calling the
// same operation on different servers keeps each call's server attributes
// and metric points apart.
func TestSameOperationOnTwoServers(t *testing.T) {
	obs, spans, h := recorded(t)
	var urls []string
	for i := 0; i < 2; i++ {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, benchReply)
		}))
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
	}
	p := agenttrust.ActionCheckParams{AgentID: "agent-123", ToolName: "read_file", ToolInputSummary: "x", SessionID: "s1"}
	for round := 0; round < 2; round++ {
		for _, u := range urls {
			c, err := agenttrust.New(agenttrust.WithBaseURL(u), agenttrust.WithAuthURL(u), agenttrust.WithAPIKey("sk_test"),
				agenttrust.WithObserver(obs))
			require.NoError(t, err)
			_, err = c.Actions.Check(ctxT(t), p)
			require.NoError(t, err)
		}
	}
	ended := spans.Ended()
	require.Len(t, ended, 4)
	for i, s := range ended {
		assert.Equal(t, with(requestAttrs(t, urls[i%2], "POST", "actions.check", checkTmpl), "http.response.status_code", "200"), attrs(s.Attributes()), fmt.Sprintf("span %d", i))
	}
	assert.Equal(t, map[string]string{
		requestMetric(t, urls[0], "POST", "actions.check", checkTmpl, 200, ""): "count=2",
		requestMetric(t, urls[1], "POST", "actions.check", checkTmpl, 200, ""): "count=2",
	}, h.points(t), "metrics")
}

// TestManyKindsConcurrently: calls and checks of more kinds than the
// observer caches, from several goroutines, each get their own attributes
// and metric points.
func TestManyKindsConcurrently(t *testing.T) {
	obs, spans, h := recorded(t)
	const kinds, workers = 1100, 4
	info := func(i int) agenttrust.RequestInfo {
		return agenttrust.RequestInfo{Operation: "op" + strconv.Itoa(i%7), Method: "POST", URLTemplate: "/t",
			Scheme: "http", ServerAddress: "127.0.0.1", ServerPort: 1000 + i}
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			ctx := context.Background()
			for i := w; i < kinds; i += workers {
				req := info(i)
				check := agenttrust.CheckInfo{AgentID: "agent-1", Tool: "tool" + strconv.Itoa(i)}
				cctx := obs.CheckStart(ctx, check)
				rctx := obs.RequestStart(cctx, req)
				obs.RequestDone(rctx, req, agenttrust.RequestResult{Status: 200 + i%3, Attempts: 1, Duration: time.Millisecond})
				obs.CheckDone(cctx, check, agenttrust.CheckResult{Outcome: agenttrust.CheckAllowed, CheckID: "chk-" + strconv.Itoa(i),
					Duration: time.Millisecond})
			}
		}(w)
	}
	wg.Wait()
	ended := spans.Ended()
	require.Len(t, ended, 2*kinds)
	calls := map[int]trace.SpanID{} // port - 1000 -> the call's parent
	checks := map[int]trace.SpanID{}
	for _, s := range ended {
		a := attrs(s.Attributes())
		if s.Name() == agenttrustotel.SpanCheck {
			i, _ := strconv.Atoi(a["agenttrust.tool.name"][len("tool"):])
			assert.Equal(t, map[string]string{"agenttrust.tool.name": "tool" + strconv.Itoa(i),
				"agenttrust.agent.id": "agent-1", "agenttrust.check.outcome": "allowed", "agenttrust.check.id": "chk-" + strconv.Itoa(i)}, a, s.Name())
			checks[i] = s.SpanContext().SpanID()
			continue
		}
		port, _ := strconv.Atoi(a["server.port"])
		i := port - 1000
		req := info(i)
		assert.Equal(t, map[string]string{"http.request.method": "POST", "server.address": "127.0.0.1",
			"server.port": strconv.Itoa(port), "agenttrust.operation": req.Operation, "url.template": "/t", "url.scheme": "http",
			"http.response.status_code": strconv.Itoa(200 + i%3)}, a, s.Name())
		assert.Equal(t, "agenttrust."+req.Operation, s.Name(), "span name for operation %q", req.Operation)
		calls[i] = s.Parent().SpanID()
	}
	for i := 0; i < kinds; i++ {
		require.True(t, checks[i].IsValid(), "check %d has no span", i)
		require.Equal(t, checks[i], calls[i], "call %d is not the child of its check", i)
	}
	points := h.points(t)
	assert.Len(t, points, kinds+2) // one duration per call kind, the check duration and the decisions
	for i := 0; i < kinds; i++ {
		req := info(i)
		key := requestMetric(t, "http://127.0.0.1:"+strconv.Itoa(req.ServerPort), "POST", req.Operation, "/t", 200+i%3, "")
		require.Equal(t, "count=1", points[key], key)
	}
}

// lowerCasePropagator writes a header under a lower-case name, as some
// propagators do.
type lowerCasePropagator struct{}

func (lowerCasePropagator) Inject(ctx context.Context, c propagation.TextMapCarrier) {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		c.Set("x-custom-trace", sc.TraceID().String())
	}
}
func (lowerCasePropagator) Extract(ctx context.Context, _ propagation.TextMapCarrier) context.Context {
	return ctx
}
func (lowerCasePropagator) Fields() []string { return []string{"x-custom-trace"} }

// TestInjectedHeaderNames: whatever name a propagator uses, the header it
// sets has the canonical name, the one the request carries.
func TestInjectedHeaderNames(t *testing.T) {
	obs, _, _ := recorded(t, agenttrustotel.WithPropagator(propagation.NewCompositeTextMapPropagator(
		propagation.TraceContext{}, lowerCasePropagator{})))
	req := agenttrust.RequestInfo{Operation: "actions.check", Method: "POST", URLTemplate: checkTmpl, Scheme: "http",
		ServerAddress: "127.0.0.1", ServerPort: 80}
	ctx := obs.RequestStart(context.Background(), req)
	header := http.Header{}
	obs.AttemptStart(ctx, req, 1, header)
	sc := trace.SpanContextFromContext(ctx)
	want := http.Header{
		"Traceparent":    {fmt.Sprintf("00-%s-%s-01", sc.TraceID(), sc.SpanID())},
		"X-Custom-Trace": {sc.TraceID().String()},
	}
	assert.Equal(t, want, header)
	obs.RequestDone(ctx, req, agenttrust.RequestResult{Status: 200, Attempts: 1})
}

// TestHooksAddNoAllocation: with metrics only (a no-op tracer provider),
// the hooks of a guard check and its call allocate nothing beyond what
// starting the two spans costs the tracer itself.
func TestHooksAddNoAllocation(t *testing.T) {
	tp := noop.NewTracerProvider()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer mp.Shutdown(context.Background())
	obs, err := agenttrustotel.New(agenttrustotel.WithTracerProvider(tp), agenttrustotel.WithMeterProvider(mp))
	require.NoError(t, err)
	req := agenttrust.RequestInfo{Operation: "actions.check", Method: "POST", URLTemplate: checkTmpl, Scheme: "http",
		ServerAddress: "127.0.0.1", ServerPort: 8082}
	check := agenttrust.CheckInfo{AgentID: "agent-123", Tool: "read_file", Summary: "[5 chars]"}
	ctx := context.Background()
	header := http.Header{}
	hooks := func() {
		cctx := obs.CheckStart(ctx, check)
		rctx := obs.RequestStart(cctx, req)
		obs.AttemptStart(rctx, req, 1, header)
		obs.AttemptDone(rctx, req, agenttrust.AttemptResult{Attempt: 1, Status: 200, Duration: time.Millisecond})
		obs.RequestDone(rctx, req, agenttrust.RequestResult{Status: 200, Attempts: 1, Duration: time.Millisecond})
		obs.CheckDone(cctx, check, agenttrust.CheckResult{Outcome: agenttrust.CheckAllowed, Tier: "fast", CheckID: "chk-1",
			Duration: time.Millisecond})
	}
	tracer := tp.Tracer("reference")
	spansOnly := func() {
		cctx, check := tracer.Start(ctx, "check")
		_, call := tracer.Start(cctx, "call")
		call.End()
		check.End()
	}
	hooks() // fills the observer's caches
	// The least of three counts each: another goroutine allocating during
	// a count only ever adds to it.
	got, base := math.Inf(1), math.Inf(1)
	for range 3 {
		got, base = min(got, testing.AllocsPerRun(200, hooks)), min(base, testing.AllocsPerRun(200, spansOnly))
	}
	assert.LessOrEqual(t, got, base, "allocations of the hooks per check (%v), against starting the spans alone (%v)", got, base)
}
