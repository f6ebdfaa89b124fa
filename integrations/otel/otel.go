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
	"sync/atomic"

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

// instruments are the metric instruments, with attribute sets and option
// slices prepared for the values known in advance, so that recording
// allocates nothing.
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

	byOutcome map[agenttrust.CheckOutcome]*outcomeOpts
	byReason  map[agenttrust.DropReason][]metric.AddOption
	byCache   map[agenttrust.CacheKind][2][]metric.AddOption // miss, hit
}

// outcomeOpts are the span attribute and the metric options of a check
// outcome.
type outcomeOpts struct {
	attr   attribute.KeyValue
	record []metric.RecordOption
	add    []metric.AddOption
}

func newOutcomeOpts(oc agenttrust.CheckOutcome) *outcomeOpts {
	kv := AttrCheckOutcome.String(string(oc))
	opt := metric.WithAttributeSet(attribute.NewSet(kv))
	return &outcomeOpts{attr: kv, record: []metric.RecordOption{opt}, add: []metric.AddOption{opt}}
}

type observer struct {
	cfg    config
	tracer trace.Tracer
	m      instruments
	calls  callCache
	checks cowMap[checkKey, []trace.SpanStartOption]
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
	o := &observer{cfg: cfg}
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
	var errs []error
	duration := func(name, desc string) metric.Float64Histogram {
		h, err := meter.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(durationBuckets...))
		errs = append(errs, err)
		return h
	}
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := meter.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	m.reqDuration = duration(MetricRequestDuration, "Duration of AgentTrust API calls, retries included.")
	m.checkDuration = duration(MetricCheckDuration, "Duration of guard checks, by outcome.")
	m.decisions = counter(MetricDecisions, "{decision}", "Guard decisions, by outcome.")
	m.failedOpen = counter(MetricFailedOpen, "{check}",
		"Checks allowed because the Guardian was unavailable and the guard fails open.")
	m.sent = counter(MetricTelemetrySent, "{event}", "Telemetry events the gateway accepted.")
	m.dropped = counter(MetricTelemetryDropped, "{event}", "Telemetry events given up, by reason.")
	m.batchFailed = counter(MetricTelemetryFailed, "{batch}", "Failed attempts to send a telemetry batch.")
	m.cache = counter(MetricCacheLookups, "{lookup}", "Token and introspection cache lookups, by cache and result.")
	var err error
	m.queue, err = meter.Int64UpDownCounter(MetricTelemetryQueue, metric.WithUnit("{event}"),
		metric.WithDescription("Telemetry events waiting to be sent, queued or in flight."))
	if err = errors.Join(append(errs, err)...); err != nil {
		return err
	}
	m.byOutcome = map[agenttrust.CheckOutcome]*outcomeOpts{}
	for _, oc := range []agenttrust.CheckOutcome{agenttrust.CheckAllowed, agenttrust.CheckDenied, agenttrust.CheckElevation,
		agenttrust.CheckUnavailable, agenttrust.CheckFailedOpen, agenttrust.CheckError} {
		m.byOutcome[oc] = newOutcomeOpts(oc)
	}
	m.byReason = map[agenttrust.DropReason][]metric.AddOption{}
	for _, r := range []agenttrust.DropReason{agenttrust.DropQueueFull, agenttrust.DropClosed, agenttrust.DropInvalid,
		agenttrust.DropUndeliverable, agenttrust.DropAborted} {
		m.byReason[r] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(AttrDropReason.String(string(r))))}
	}
	m.byCache = map[agenttrust.CacheKind][2][]metric.AddOption{}
	for _, k := range []agenttrust.CacheKind{agenttrust.CacheToken, agenttrust.CacheIntrospection} {
		m.byCache[k] = [2][]metric.AddOption{
			{metric.WithAttributeSet(attribute.NewSet(AttrCacheName.String(string(k)), AttrCacheResult.String("miss")))},
			{metric.WithAttributeSet(attribute.NewSet(AttrCacheName.String(string(k)), AttrCacheResult.String("hit")))},
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

// maxCached bounds each cache of prepared attributes; RequestInfo values
// come from the SDK's route table and the client's few service URLs, and
// a guard checks a few tools, so the bound is only a safety net. Past it,
// attributes are built for each call, as they would be without a cache.
const maxCached = 1024

// maxResults bounds the (status, error class) pairs cached per call kind.
const maxResults = 64

// cowMap is a map for values computed once and read on every call: readers
// load an immutable map without locking; a writer copies it. It holds at
// most maxCached entries.
type cowMap[K comparable, V any] struct {
	mu sync.Mutex // serialises writers
	m  atomic.Pointer[map[K]V]
}

func (c *cowMap[K, V]) load(k K) (V, bool) {
	if m := c.m.Load(); m != nil {
		v, ok := (*m)[k]
		return v, ok
	}
	var zero V
	return zero, false
}

// update stores f(old value) under k and returns it, unless the map is full
// (then it returns f's result without storing it). f runs with the writers'
// lock held.
func (c *cowMap[K, V]) update(k K, f func(old V, ok bool) V) V {
	if p := c.m.Load(); p != nil && len(*p) >= maxCached {
		if _, ok := (*p)[k]; !ok {
			// Full: no lock, so that uncached keys do not queue up.
			var zero V
			return f(zero, false)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var cur map[K]V
	if p := c.m.Load(); p != nil {
		cur = *p
	}
	old, ok := cur[k]
	v := f(old, ok)
	if !ok && len(cur) >= maxCached {
		return v
	}
	next := make(map[K]V, len(cur)+1)
	for key, val := range cur {
		next[key] = val
	}
	next[k] = v
	c.m.Store(&next)
	return v
}

// callCache keeps what each kind of call needs, prepared once: its span
// name, its span start options and, per status and error class, its end
// attributes and metric options. It is indexed by operation name, which
// hashes faster than a whole RequestInfo; the few calls of one operation
// (one per service URL) are told apart by comparing their RequestInfo.
type callCache struct {
	byOp cowMap[string, []*callEntry]
	n    atomic.Int64 // entries stored, bounded by maxCached
}

// callEntry is the prepared attributes of one kind of call.
type callEntry struct {
	req   agenttrust.RequestInfo
	name  string
	start []trace.SpanStartOption

	mu      sync.Mutex // serialises writers of results
	results atomic.Pointer[[]*callResult]
}

// callResult is the prepared attributes of a call's outcome.
type callResult struct {
	status int
	class  string
	// end are the span attributes set when the call ends.
	end []attribute.KeyValue
	// record are the options of the duration histogram.
	record []metric.RecordOption
}

var clientKind = trace.WithSpanKind(trace.SpanKindClient)

func newCallEntry(req agenttrust.RequestInfo) *callEntry {
	attrs := append(serverAttrs(req, 1), semconv.URLScheme(req.Scheme))
	return &callEntry{req: req, name: spanPrefix + req.Operation,
		start: []trace.SpanStartOption{clientKind, trace.WithAttributes(attrs...)}}
}

func (c *callCache) entry(req agenttrust.RequestInfo) *callEntry {
	list, _ := c.byOp.load(req.Operation)
	for _, e := range list {
		if e.req == req {
			return e
		}
	}
	fresh := newCallEntry(req)
	if c.n.Load() >= maxCached {
		return fresh
	}
	var found *callEntry
	c.byOp.update(req.Operation, func(old []*callEntry, _ bool) []*callEntry {
		for _, e := range old {
			if e.req == req {
				found = e
				return old
			}
		}
		c.n.Add(1)
		return append(old[:len(old):len(old)], fresh)
	})
	if found != nil {
		return found
	}
	return fresh
}

func (e *callEntry) result(status int, class string) *callResult {
	if rs := e.results.Load(); rs != nil {
		for _, r := range *rs {
			if r.status == status && r.class == class {
				return r
			}
		}
	}
	var end []attribute.KeyValue
	if status != 0 {
		end = append(end, semconv.HTTPResponseStatusCode(status))
	}
	if class != "" {
		end = append(end, semconv.ErrorTypeKey.String(class))
	}
	attrs := append(serverAttrs(e.req, len(end)), end...)
	fresh := &callResult{status: status, class: class, end: end,
		record: []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attrs...))}}
	e.mu.Lock()
	defer e.mu.Unlock()
	var cur []*callResult
	if rs := e.results.Load(); rs != nil {
		cur = *rs
	}
	for _, r := range cur {
		if r.status == status && r.class == class {
			return r
		}
	}
	if len(cur) < maxResults {
		next := append(cur[:len(cur):len(cur)], fresh)
		e.results.Store(&next)
	}
	return fresh
}

func (o *observer) requestStart(ctx context.Context, req agenttrust.RequestInfo) context.Context {
	e := o.calls.entry(req)
	ctx, _ = o.tracer.Start(ctx, e.name, e.start...)
	return ctx
}

// canonical maps the header names the usual propagators write to their
// canonical form, so injecting them does not allocate a new key each time.
var canonical = map[string]string{
	"traceparent": "Traceparent",
	"tracestate":  "Tracestate",
	"baggage":     "Baggage",
}

// headerCarrier is propagation.HeaderCarrier without the allocation of a
// canonical header name for each header set.
type headerCarrier http.Header

func (h headerCarrier) Get(key string) string { return http.Header(h).Get(key) }

func (h headerCarrier) Set(key, value string) {
	ck, ok := canonical[key]
	if !ok {
		ck = http.CanonicalHeaderKey(key)
	}
	h[ck] = []string{value}
}

func (h headerCarrier) Keys() []string {
	return propagation.HeaderCarrier(h).Keys()
}

func (o *observer) attemptStart(ctx context.Context, _ agenttrust.RequestInfo, _ int, header http.Header) {
	o.cfg.prop.Inject(ctx, headerCarrier(header))
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
	r := o.calls.entry(req).result(res.Status, res.ErrorClass)
	span := trace.SpanFromContext(ctx)
	if span.IsRecording() {
		end := r.end
		if res.Attempts > 1 {
			end = append(end[:len(end):len(end)], semconv.HTTPRequestResendCount(res.Attempts-1))
		}
		if len(end) > 0 {
			span.SetAttributes(end...)
		}
		if res.ErrorClass != "" {
			span.SetStatus(codes.Error, res.ErrorClass)
		}
		span.End()
	}
	o.m.reqDuration.Record(ctx, res.Duration.Seconds(), r.record...)
}

// checkKey identifies the start options of a check span.
type checkKey struct{ agent, tool string }

var internalKind = trace.WithSpanKind(trace.SpanKindInternal)

func (o *observer) checkStart(ctx context.Context, c agenttrust.CheckInfo) context.Context {
	if o.cfg.summaries {
		ctx, _ = o.tracer.Start(ctx, SpanCheck, internalKind, trace.WithAttributes(
			AttrToolName.String(c.Tool), AttrAgentID.String(c.AgentID), AttrInputSummary.String(c.Summary)))
		return ctx
	}
	k := checkKey{agent: c.AgentID, tool: c.Tool}
	opts, ok := o.checks.load(k)
	if !ok {
		opts = o.checks.update(k, func(old []trace.SpanStartOption, ok bool) []trace.SpanStartOption {
			if ok {
				return old
			}
			return []trace.SpanStartOption{internalKind,
				trace.WithAttributes(AttrToolName.String(c.Tool), AttrAgentID.String(c.AgentID))}
		})
	}
	ctx, _ = o.tracer.Start(ctx, SpanCheck, opts...)
	return ctx
}

func (o *observer) checkDone(ctx context.Context, _ agenttrust.CheckInfo, res agenttrust.CheckResult) {
	oc, ok := o.m.byOutcome[res.Outcome]
	if !ok {
		oc = newOutcomeOpts(res.Outcome)
	}
	span := trace.SpanFromContext(ctx)
	if span.IsRecording() {
		attrs := make([]attribute.KeyValue, 0, 4)
		attrs = append(attrs, oc.attr)
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
	o.m.checkDuration.Record(ctx, res.Duration.Seconds(), oc.record...)
	o.m.decisions.Add(ctx, 1, oc.add...)
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
			byReason = []metric.AddOption{metric.WithAttributes(AttrDropReason.String(string(t.Reason)))}
		}
		o.m.dropped.Add(ctx, int64(t.Events), byReason...)
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
	o.m.cache.Add(ctx, 1, opts[i]...)
}
