// Package agenttrustotel reports what the AgentTrust SDK does as
// OpenTelemetry traces and metrics: a client span per API call, a span per
// guard check with its decision, and metrics for decisions, check latency,
// fail-opens, telemetry delivery and cache use.
//
// Import it under its package name, since OpenTelemetry's own package is
// "otel":
//
//	import agenttrustotel "github.com/agenttrustid/agenttrust-go/integrations/otel"
//
// New builds an agenttrust.Observer; install it on the Client, and every
// Guard and tokenauth.Verifier built on that Client reports through it too:
//
//	obs, err := agenttrustotel.New(
//		agenttrustotel.WithTracerProvider(tp),
//		agenttrustotel.WithMeterProvider(mp))
//	if err != nil { ... }
//	client, err := agenttrust.New(agenttrust.WithObserver(obs), ...)
//
// Every API call becomes a span named "agenttrust." plus the operation
// ("agenttrust.actions.check", "agenttrust.tokens.introspect", ...), of kind
// client, with the HTTP semantic-convention attributes (method, URL
// template, server address and port, status code, error type, resend count)
// and an "agenttrust.attempt.failed" event per failed attempt. A W3C traceparent is
// injected into every attempt, so a gateway can join the trace. A guard
// check is an internal span "agenttrust.guard.check" around its API call,
// with the tool name, the outcome, the Guardian tier and the check id.
//
// Nothing secret is exported: no API key, token, request or response body,
// expanded URL (ids stay placeholders in url.template) or URL password. The
// input summary of a check is exported only with WithInputSummaries.
//
// The metrics are listed in the README.
package agenttrustotel

import (
	"context"
	"errors"
	"net/http"
	"sync"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the tracer and the meter.
const ScopeName = "github.com/agenttrustid/agenttrust-go/integrations/otel"

// Attribute keys of the AgentTrust namespace.
const (
	// AttrOperation is the SDK operation, e.g. "actions.check".
	AttrOperation = attribute.Key("agenttrust.operation")
	// AttrAttempt is the attempt number of an "agenttrust.attempt.failed"
	// event.
	AttrAttempt = attribute.Key("agenttrust.attempt")
	// AttrAgentID is the agent a guard checks for.
	AttrAgentID = attribute.Key("agenttrust.agent.id")
	// AttrToolName is the tool a guard checks.
	AttrToolName = attribute.Key("agenttrust.tool.name")
	// AttrInputSummary is the input summary sent with a check; exported
	// only with WithInputSummaries.
	AttrInputSummary = attribute.Key("agenttrust.tool.input_summary")
	// AttrCheckOutcome is the guard's decision: allowed, denied,
	// elevation, unavailable, failed_open or error.
	AttrCheckOutcome = attribute.Key("agenttrust.check.outcome")
	// AttrCheckID identifies a check at the gateway.
	AttrCheckID = attribute.Key("agenttrust.check.id")
	// AttrGuardTier is the Guardian tier that decided, e.g. "fast".
	AttrGuardTier = attribute.Key("agenttrust.guard.tier")
	// AttrDropReason is why telemetry events were dropped.
	AttrDropReason = attribute.Key("agenttrust.telemetry.drop_reason")
	// AttrCacheName is "token" or "introspection".
	AttrCacheName = attribute.Key("agenttrust.cache.name")
	// AttrCacheResult is "hit" or "miss".
	AttrCacheResult = attribute.Key("agenttrust.cache.result")
)

// Metric names.
const (
	MetricRequestDuration  = "http.client.request.duration"
	MetricCheckDuration    = "agenttrust.guard.check.duration"
	MetricDecisions        = "agenttrust.guard.decisions"
	MetricFailedOpen       = "agenttrust.guard.failed_open"
	MetricTelemetrySent    = "agenttrust.telemetry.events.sent"
	MetricTelemetryDropped = "agenttrust.telemetry.events.dropped"
	MetricTelemetryFailed  = "agenttrust.telemetry.batches.failed"
	MetricTelemetryQueue   = "agenttrust.telemetry.queue.size"
	MetricCacheLookups     = "agenttrust.cache.lookups"
)

// Span and event names.
const (
	// SpanCheck is the name of a guard check's span.
	SpanCheck = "agenttrust.guard.check"
	// EventAttemptFailed is the name of the span event recorded for each
	// failed attempt of a call.
	EventAttemptFailed = "agenttrust.attempt.failed"
	spanPrefix         = "agenttrust."
)

// durationBuckets are the semantic conventions' boundaries for HTTP
// durations, in seconds.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// Option configures New.
type Option func(*config)

type config struct {
	tp        trace.TracerProvider
	mp        metric.MeterProvider
	prop      propagation.TextMapPropagator
	summaries bool
}

// WithTracerProvider sets the tracer provider; the default is the global
// one (otel.GetTracerProvider).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tp = tp }
}

// WithMeterProvider sets the meter provider; the default is the global one
// (otel.GetMeterProvider).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.mp = mp }
}

// WithPropagator sets how trace context is injected into outgoing requests;
// the default is W3C Trace Context (traceparent and tracestate), whatever
// the global propagator is.
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(c *config) { c.prop = p }
}

// WithInputSummaries exports a check's input summary as the
// agenttrust.tool.input_summary span attribute. Opt in only where the
// summaries the guard sends may also be stored by your tracing backend:
// guards send what their caller gives them, which may be the input itself.
func WithInputSummaries() Option {
	return func(c *config) { c.summaries = true }
}

// instruments are the metric instruments, with attribute sets prepared for
// the values known in advance so that recording allocates nothing.
type instruments struct {
	reqDuration   metric.Float64Histogram
	checkDuration metric.Float64Histogram
	decisions     metric.Int64Counter
	failedOpen    metric.Int64Counter
	sent          metric.Int64Counter
	dropped       metric.Int64Counter
	batchFailed   metric.Int64Counter
	queue         metric.Int64UpDownCounter
	cache         metric.Int64Counter

	byOutcome map[agenttrust.CheckOutcome]metric.MeasurementOption
	byReason  map[agenttrust.DropReason]metric.MeasurementOption
	byCache   map[agenttrust.CacheKind][2]metric.MeasurementOption // miss, hit
}

type observer struct {
	cfg    config
	tracer trace.Tracer
	m      instruments
	cache  attrCache
}

// New returns an Observer that records spans and metrics for a Client and
// the Guards and tokenauth.Verifiers built on it. It fails only when a metric
// instrument cannot be created.
func New(opts ...Option) (*agenttrust.Observer, error) {
	cfg := config{}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if cfg.tp == nil {
		cfg.tp = otel.GetTracerProvider()
	}
	if cfg.mp == nil {
		cfg.mp = otel.GetMeterProvider()
	}
	if cfg.prop == nil {
		cfg.prop = propagation.TraceContext{}
	}
	o := &observer{cfg: cfg, cache: attrCache{
		start:  map[agenttrust.RequestInfo]spanStart{},
		result: map[resultKey]metric.MeasurementOption{},
	}}
	o.tracer = cfg.tp.Tracer(ScopeName, trace.WithInstrumentationVersion(agenttrust.Version),
		trace.WithSchemaURL(semconv.SchemaURL))
	meter := cfg.mp.Meter(ScopeName, metric.WithInstrumentationVersion(agenttrust.Version),
		metric.WithSchemaURL(semconv.SchemaURL))
	if err := o.m.init(meter); err != nil {
		return nil, err
	}
	return &agenttrust.Observer{
		RequestStart: o.requestStart,
		AttemptStart: o.attemptStart,
		AttemptDone:  o.attemptDone,
		RequestDone:  o.requestDone,
		CheckStart:   o.checkStart,
		CheckDone:    o.checkDone,
		Telemetry:    o.telemetry,
		CacheLookup:  o.cacheLookup,
	}, nil
}

func (m *instruments) init(meter metric.Meter) error {
	var err, e error
	collect := func() {
		err = errors.Join(err, e)
	}
	m.reqDuration, e = meter.Float64Histogram(MetricRequestDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of AgentTrust API calls, retries included."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	collect()
	m.checkDuration, e = meter.Float64Histogram(MetricCheckDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of guard checks, by outcome."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	collect()
	m.decisions, e = meter.Int64Counter(MetricDecisions, metric.WithUnit("{decision}"),
		metric.WithDescription("Guard decisions, by outcome."))
	collect()
	m.failedOpen, e = meter.Int64Counter(MetricFailedOpen, metric.WithUnit("{check}"),
		metric.WithDescription("Checks allowed because the Guardian was unavailable and the guard fails open."))
	collect()
	m.sent, e = meter.Int64Counter(MetricTelemetrySent, metric.WithUnit("{event}"),
		metric.WithDescription("Telemetry events the gateway accepted."))
	collect()
	m.dropped, e = meter.Int64Counter(MetricTelemetryDropped, metric.WithUnit("{event}"),
		metric.WithDescription("Telemetry events given up, by reason."))
	collect()
	m.batchFailed, e = meter.Int64Counter(MetricTelemetryFailed, metric.WithUnit("{batch}"),
		metric.WithDescription("Failed attempts to send a telemetry batch."))
	collect()
	m.queue, e = meter.Int64UpDownCounter(MetricTelemetryQueue, metric.WithUnit("{event}"),
		metric.WithDescription("Telemetry events waiting to be sent, queued or in flight."))
	collect()
	m.cache, e = meter.Int64Counter(MetricCacheLookups, metric.WithUnit("{lookup}"),
		metric.WithDescription("Token and introspection cache lookups, by cache and result."))
	collect()
	if err != nil {
		return err
	}
	m.byOutcome = map[agenttrust.CheckOutcome]metric.MeasurementOption{}
	for _, oc := range []agenttrust.CheckOutcome{agenttrust.CheckAllowed, agenttrust.CheckDenied, agenttrust.CheckElevation,
		agenttrust.CheckUnavailable, agenttrust.CheckFailedOpen, agenttrust.CheckError} {
		m.byOutcome[oc] = metric.WithAttributeSet(attribute.NewSet(AttrCheckOutcome.String(string(oc))))
	}
	m.byReason = map[agenttrust.DropReason]metric.MeasurementOption{}
	for _, r := range []agenttrust.DropReason{agenttrust.DropQueueFull, agenttrust.DropClosed, agenttrust.DropInvalid,
		agenttrust.DropUndeliverable, agenttrust.DropAborted} {
		m.byReason[r] = metric.WithAttributeSet(attribute.NewSet(AttrDropReason.String(string(r))))
	}
	m.byCache = map[agenttrust.CacheKind][2]metric.MeasurementOption{}
	for _, k := range []agenttrust.CacheKind{agenttrust.CacheToken, agenttrust.CacheIntrospection} {
		m.byCache[k] = [2]metric.MeasurementOption{
			metric.WithAttributeSet(attribute.NewSet(AttrCacheName.String(string(k)), AttrCacheResult.String("miss"))),
			metric.WithAttributeSet(attribute.NewSet(AttrCacheName.String(string(k)), AttrCacheResult.String("hit"))),
		}
	}
	return nil
}

// serverAttrs are the attributes shared by a call's span and its metric.
func serverAttrs(req agenttrust.RequestInfo, extra int) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 5+extra)
	attrs = append(attrs,
		semconv.HTTPRequestMethodKey.String(req.Method),
		semconv.ServerAddress(req.ServerAddress),
		semconv.ServerPort(req.ServerPort),
		AttrOperation.String(req.Operation),
	)
	if req.URLTemplate != "" {
		attrs = append(attrs, semconv.URLTemplate(req.URLTemplate))
	}
	return attrs
}

// maxCached bounds each attribute cache; RequestInfo values come from the
// SDK's route table and the client's few service URLs, so the bound is only
// a safety net.
const maxCached = 1024

// resultKey identifies the metric attributes of a finished call.
type resultKey struct {
	req    agenttrust.RequestInfo
	status int
	class  string
}

// attrCache keeps the attributes of the calls seen so far, so that a call
// allocates no attribute set of its own.
type attrCache struct {
	mu     sync.RWMutex
	start  map[agenttrust.RequestInfo]spanStart
	result map[resultKey]metric.MeasurementOption
}

// spanStart is the name and start attributes of a call's span.
type spanStart struct {
	name  string
	attrs trace.SpanStartOption
}

func (c *attrCache) startOf(req agenttrust.RequestInfo) spanStart {
	c.mu.RLock()
	opt, ok := c.start[req]
	c.mu.RUnlock()
	if ok {
		return opt
	}
	attrs := append(serverAttrs(req, 1), semconv.URLScheme(req.Scheme))
	opt = spanStart{name: spanPrefix + req.Operation, attrs: trace.WithAttributes(attrs...)}
	c.mu.Lock()
	if len(c.start) < maxCached {
		c.start[req] = opt
	}
	c.mu.Unlock()
	return opt
}

func (c *attrCache) resultOption(k resultKey) metric.MeasurementOption {
	c.mu.RLock()
	opt, ok := c.result[k]
	c.mu.RUnlock()
	if ok {
		return opt
	}
	attrs := serverAttrs(k.req, 2)
	if k.status != 0 {
		attrs = append(attrs, semconv.HTTPResponseStatusCode(k.status))
	}
	if k.class != "" {
		attrs = append(attrs, semconv.ErrorTypeKey.String(k.class))
	}
	opt = metric.WithAttributeSet(attribute.NewSet(attrs...))
	c.mu.Lock()
	if len(c.result) < maxCached {
		c.result[k] = opt
	}
	c.mu.Unlock()
	return opt
}

var clientKind = trace.WithSpanKind(trace.SpanKindClient)

func (o *observer) requestStart(ctx context.Context, req agenttrust.RequestInfo) context.Context {
	st := o.cache.startOf(req)
	ctx, _ = o.tracer.Start(ctx, st.name, clientKind, st.attrs)
	return ctx
}

func (o *observer) attemptStart(ctx context.Context, _ agenttrust.RequestInfo, _ int, header http.Header) {
	o.cfg.prop.Inject(ctx, propagation.HeaderCarrier(header))
}

// attemptDone records a failed attempt as an event of the call's span; the
// span itself shows the final status and the resend count.
func (o *observer) attemptDone(ctx context.Context, _ agenttrust.RequestInfo, a agenttrust.AttemptResult) {
	if a.ErrorClass == "" {
		return
	}
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	attrs := make([]attribute.KeyValue, 1, 3)
	attrs[0] = AttrAttempt.Int(a.Attempt)
	if a.Status != 0 {
		attrs = append(attrs, semconv.HTTPResponseStatusCode(a.Status))
	}
	attrs = append(attrs, semconv.ErrorTypeKey.String(a.ErrorClass))
	span.AddEvent(EventAttemptFailed, trace.WithAttributes(attrs...))
}

func (o *observer) requestDone(ctx context.Context, req agenttrust.RequestInfo, res agenttrust.RequestResult) {
	span := trace.SpanFromContext(ctx)
	if span.IsRecording() {
		var buf [3]attribute.KeyValue
		ra := buf[:0]
		if res.Status != 0 {
			ra = append(ra, semconv.HTTPResponseStatusCode(res.Status))
		}
		if res.ErrorClass != "" {
			ra = append(ra, semconv.ErrorTypeKey.String(res.ErrorClass))
		}
		if res.Attempts > 1 {
			ra = append(ra, semconv.HTTPRequestResendCount(res.Attempts-1))
		}
		span.SetAttributes(ra...)
		if res.ErrorClass != "" {
			span.SetStatus(codes.Error, res.ErrorClass)
		}
		span.End()
	}
	o.m.reqDuration.Record(ctx, res.Duration.Seconds(),
		o.cache.resultOption(resultKey{req: req, status: res.Status, class: res.ErrorClass}))
}

func (o *observer) checkStart(ctx context.Context, c agenttrust.CheckInfo) context.Context {
	attrs := make([]attribute.KeyValue, 0, 3)
	attrs = append(attrs, AttrToolName.String(c.Tool), AttrAgentID.String(c.AgentID))
	if o.cfg.summaries {
		attrs = append(attrs, AttrInputSummary.String(c.Summary))
	}
	ctx, _ = o.tracer.Start(ctx, SpanCheck, trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...))
	return ctx
}

func (o *observer) checkDone(ctx context.Context, _ agenttrust.CheckInfo, res agenttrust.CheckResult) {
	span := trace.SpanFromContext(ctx)
	if span.IsRecording() {
		attrs := make([]attribute.KeyValue, 0, 4)
		attrs = append(attrs, AttrCheckOutcome.String(string(res.Outcome)))
		if res.Tier != "" {
			attrs = append(attrs, AttrGuardTier.String(res.Tier))
		}
		if res.CheckID != "" {
			attrs = append(attrs, AttrCheckID.String(res.CheckID))
		}
		if res.ErrorClass != "" {
			attrs = append(attrs, semconv.ErrorTypeKey.String(res.ErrorClass))
		}
		span.SetAttributes(attrs...)
		switch res.Outcome {
		case agenttrust.CheckUnavailable, agenttrust.CheckError:
			span.SetStatus(codes.Error, string(res.Outcome))
		}
		span.End()
	}
	byOutcome, ok := o.m.byOutcome[res.Outcome]
	if !ok {
		byOutcome = metric.WithAttributes(AttrCheckOutcome.String(string(res.Outcome)))
	}
	o.m.checkDuration.Record(ctx, res.Duration.Seconds(), byOutcome)
	o.m.decisions.Add(ctx, 1, byOutcome)
	if res.Outcome == agenttrust.CheckFailedOpen {
		o.m.failedOpen.Add(ctx, 1, metric.WithAttributes(semconv.ErrorTypeKey.String(orOther(res.ErrorClass))))
	}
}

func orOther(class string) string {
	if class == "" {
		return semconv.ErrorTypeOther.Value.AsString()
	}
	return class
}

func (o *observer) telemetry(t agenttrust.TelemetryInfo) {
	ctx := context.Background()
	switch t.Kind {
	case agenttrust.TelemetrySent:
		o.m.sent.Add(ctx, int64(t.Events))
	case agenttrust.TelemetryDropped:
		byReason, ok := o.m.byReason[t.Reason]
		if !ok {
			byReason = metric.WithAttributes(AttrDropReason.String(string(t.Reason)))
		}
		o.m.dropped.Add(ctx, int64(t.Events), byReason)
	case agenttrust.TelemetryBatchFailed:
		o.m.batchFailed.Add(ctx, 1, metric.WithAttributes(semconv.ErrorTypeKey.String(orOther(t.ErrorClass))))
	}
	if t.PendingDelta != 0 {
		o.m.queue.Add(ctx, int64(t.PendingDelta))
	}
}

func (o *observer) cacheLookup(ctx context.Context, kind agenttrust.CacheKind, hit bool) {
	opts, ok := o.m.byCache[kind]
	i := 0
	if hit {
		i = 1
	}
	if !ok {
		o.m.cache.Add(ctx, 1, metric.WithAttributes(AttrCacheName.String(string(kind)),
			AttrCacheResult.String([2]string{"miss", "hit"}[i])))
		return
	}
	o.m.cache.Add(ctx, 1, opts[i])
}
