package agenttrust

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/agenttrustid/agenttrust-go/internal/obshook"
	"github.com/agenttrustid/agenttrust-go/internal/transport"
)

func init() {
	// tokenauth reports its introspection cache through this hook: it has
	// only the *Client, not its unexported observer.
	obshook.CacheLookup = func(client any, ctx context.Context, kind string, hit bool) {
		if c, ok := client.(*Client); ok && c != nil {
			c.obs.cache(ctx, CacheKind(kind), hit)
		}
	}
}

// Observer is a set of hooks through which the SDK reports what it does, in
// the spirit of net/http/httptrace: a request starts, each attempt is sent
// and answered, a request ends, the guard decides a check, the telemetry
// reporter queues, sends or drops events, the token cache or a
// tokenauth.Verifier's introspection cache is looked up. Any hook may be nil.
// The integrations/otel module turns these hooks into OpenTelemetry spans
// and metrics; install an Observer with WithObserver.
//
// Hooks run synchronously on the goroutine doing the work, some while a
// cache or the telemetry queue is locked, so they must be quick, must not block,
// must be safe for concurrent use, and must not call back into the Client,
// Guard or tokenauth.Verifier that called them.
//
// No hook ever receives an API key, a token, a request or response body or
// an expanded URL: requests are described by their URL template, in which
// ids stay placeholders. The one caller-provided text a hook sees is
// CheckInfo.Summary, the input summary a guard sent with a check; an
// observer should export it only when its user asks for that.
//
// With no Observer installed the hooks cost nothing: no allocation and no
// clock reading.
type Observer struct {
	// RequestStart is called when an API call starts, before its first
	// attempt. The context it returns (nil means ctx) is the one the call's
	// attempts and RequestDone receive: a tracer puts its span there.
	RequestStart func(ctx context.Context, req RequestInfo) context.Context
	// AttemptStart is called before each attempt of a call, the first
	// included. header is an empty map the hook may fill, for example with
	// a W3C traceparent; its entries are added to the attempt's request
	// unless the SDK sets that header itself (credentials, Accept,
	// Content-Type, User-Agent and the call's own headers are never
	// replaced).
	AttemptStart func(ctx context.Context, req RequestInfo, attempt int, header http.Header)
	// AttemptDone is called after each attempt.
	AttemptDone func(ctx context.Context, req RequestInfo, res AttemptResult)
	// RequestDone is called when the call has its final answer or error.
	RequestDone func(ctx context.Context, req RequestInfo, res RequestResult)

	// CheckStart is called when a guard starts a check that will ask the
	// Guardian. The context it returns (nil means ctx) carries the check:
	// the check's API call and CheckDone receive it.
	CheckStart func(ctx context.Context, check CheckInfo) context.Context
	// CheckDone is called with the guard's decision.
	CheckDone func(ctx context.Context, check CheckInfo, res CheckResult)

	// Telemetry is called when a guard's telemetry reporter queues, sends
	// or drops events. It has no context: the reporter works in the
	// background.
	Telemetry func(t TelemetryInfo)

	// CacheLookup is called for every lookup of the token cache
	// (Tokens.Issue without NoCache) and of a tokenauth.Verifier's introspection
	// cache (when enabled): hit means the answer came from the cache.
	CacheLookup func(ctx context.Context, cache CacheKind, hit bool)
}

// RequestInfo describes an API call. It never holds ids, query values or
// credentials.
type RequestInfo struct {
	// Operation names the call, e.g. "actions.check" or "agents.get";
	// "request" for a path the SDK does not know.
	Operation string
	// Method is the HTTP method.
	Method string
	// URLTemplate is the path with its ids as placeholders, including the
	// service URL's path prefix, e.g. "/api/v1/agents/{agent_id}"; "" when
	// Operation is "request".
	URLTemplate string
	// Scheme is "http" or "https".
	Scheme string
	// ServerAddress is the host name or IP address of the service called,
	// without user information.
	ServerAddress string
	// ServerPort is the port of the service called.
	ServerPort int
}

// AttemptResult is the outcome of one attempt of a call.
type AttemptResult struct {
	// Attempt is 1 for the first attempt, 2 for the first retry, and so on.
	Attempt int
	// Status is the HTTP status, 0 when no response arrived.
	Status int
	// ErrorClass is "" for a 1xx-3xx answer, else the status code ("503")
	// or a class such as "timeout", "canceled" or "network" (see
	// ErrorClass).
	ErrorClass string
	// Duration is how long the attempt took.
	Duration time.Duration
}

// RequestResult is the outcome of a call, retries included.
type RequestResult struct {
	// Status is the final HTTP status, 0 when no response arrived.
	Status int
	// Attempts is the number of attempts made (0 when the call failed
	// before sending anything).
	Attempts int
	// Err is the error the call returns, nil on success. Its message may
	// quote the server; API keys and tokens are removed from it, but an
	// exporter should prefer ErrorClass.
	Err error
	// ErrorClass is ErrorClass(Err).
	ErrorClass string
	// Duration is how long the call took, retries included.
	Duration time.Duration
}

// CheckInfo describes a guard check.
type CheckInfo struct {
	// AgentID is the agent the guard checks for.
	AgentID string
	// Tool is the tool name.
	Tool string
	// Summary is the input summary sent with the check (cut to 200 runes).
	// It may describe private input: export it only when asked to.
	Summary string
}

// CheckOutcome is what a guard decided.
type CheckOutcome string

// The outcomes of a guard check.
const (
	// CheckAllowed: the Guardian allowed the tool.
	CheckAllowed CheckOutcome = "allowed"
	// CheckDenied: the Guardian denied the tool.
	CheckDenied CheckOutcome = "denied"
	// CheckElevation: the Guardian denied the tool pending a human approval.
	CheckElevation CheckOutcome = "elevation"
	// CheckUnavailable: the Guardian could not answer and the check failed
	// closed.
	CheckUnavailable CheckOutcome = "unavailable"
	// CheckFailedOpen: the Guardian could not answer and the guard allowed
	// the tool because it was configured to fail open.
	CheckFailedOpen CheckOutcome = "failed_open"
	// CheckError: the check failed otherwise (authentication, a bad
	// request, the caller's cancellation); the tool must not run.
	CheckError CheckOutcome = "error"
)

// CheckResult is a guard's decision.
type CheckResult struct {
	// Outcome is what the guard decided.
	Outcome CheckOutcome
	// Tier is the Guardian tier that decided, e.g. "fast", when known.
	Tier string
	// CheckID identifies the check at the gateway, when known.
	CheckID string
	// ErrorClass is ErrorClass of the failure for CheckUnavailable,
	// CheckFailedOpen and CheckError, else "".
	ErrorClass string
	// Duration is how long the check took, retries included.
	Duration time.Duration
}

// TelemetryKind says what a telemetry reporter did.
type TelemetryKind string

// The kinds of TelemetryInfo.
const (
	// TelemetryQueued: one event was queued.
	TelemetryQueued TelemetryKind = "queued"
	// TelemetrySent: the gateway accepted a batch of events.
	TelemetrySent TelemetryKind = "sent"
	// TelemetryBatchFailed: sending a batch failed; its events are retried
	// or dropped (a TelemetryDropped follows for those).
	TelemetryBatchFailed TelemetryKind = "batch_failed"
	// TelemetryDropped: events were given up.
	TelemetryDropped TelemetryKind = "dropped"
)

// DropReason says why telemetry events were dropped.
type DropReason string

// The reasons of TelemetryDropped.
const (
	// DropQueueFull: the queue was at capacity, when the event was
	// reported or when a failed batch went back to the head of the queue
	// (the newest queued events are then the ones dropped).
	DropQueueFull DropReason = "queue_full"
	// DropClosed: the event was reported after Close.
	DropClosed DropReason = "closed"
	// DropInvalid: the event had an unknown type or no tool name.
	DropInvalid DropReason = "invalid"
	// DropUndeliverable: its batch failed for good (attempts exhausted or
	// a failure that retrying cannot fix).
	DropUndeliverable DropReason = "undeliverable"
	// DropAborted: Close gave up waiting for it.
	DropAborted DropReason = "aborted"
)

// TelemetryInfo describes a change in a telemetry reporter.
type TelemetryInfo struct {
	// Kind is what happened.
	Kind TelemetryKind
	// Events is the number of events concerned.
	Events int
	// PendingDelta is the change in the number of events waiting to be
	// sent (queued or in flight) that this change caused: +1 for a queued
	// event, minus the events that left the queue when a batch is sent or
	// pending events are dropped, 0 otherwise. Summed over all reporters it
	// is the total queue depth.
	PendingDelta int
	// Reason is why events were dropped (TelemetryDropped only).
	Reason DropReason
	// ErrorClass is ErrorClass of the failure (TelemetryBatchFailed only).
	ErrorClass string
}

// CacheKind names a cache for CacheLookup.
type CacheKind string

// The caches.
const (
	// CacheToken is the Client's token cache (Tokens.Issue).
	CacheToken CacheKind = "token"
	// CacheIntrospection is a tokenauth.Verifier's introspection cache.
	CacheIntrospection CacheKind = "introspection"
)

// WithObserver installs o's hooks (copied; later changes to o have no
// effect). Guards and tokenauth.Verifiers built on the Client use them too. A nil
// o, or one without any hook, installs nothing.
func WithObserver(o *Observer) Option {
	return func(c *config) error {
		c.observer = nil
		if o != nil && !o.empty() {
			cp := *o
			c.observer = &cp
		}
		return nil
	}
}

func (o *Observer) empty() bool {
	return o.RequestStart == nil && o.AttemptStart == nil && o.AttemptDone == nil && o.RequestDone == nil &&
		o.CheckStart == nil && o.CheckDone == nil && o.Telemetry == nil && o.CacheLookup == nil
}

// Observer returns a copy of the hooks installed with WithObserver, or nil
// when there are none. The guard package uses it to report checks and
// telemetry.
func (c *Client) Observer() *Observer {
	if c.obs == nil {
		return nil
	}
	cp := c.obs.h
	return &cp
}

// ErrorClass returns a short, low-cardinality name for err, for metrics and
// traces: "" for nil; the HTTP status code ("401", "503") for an error
// answer; "decode" for a malformed success answer; "timeout" and
// "canceled" when a deadline or a cancellation ended the call; "network"
// for other transport failures; "validation" for input rejected before any
// I/O; the lower-cased code for other SDK errors ("jsonrpc_error"); "_OTHER"
// for anything else. It never looks at the error's message.
func ErrorClass(err error) string {
	if err == nil {
		return ""
	}
	var ae *AgentTrustError
	if errors.As(err, &ae) {
		switch {
		case ae.Code == CodeDecode:
			return "decode"
		case ae.Status != 0:
			return strconv.Itoa(ae.Status)
		case ae.Code == CodeValidation:
			return "validation"
		case ae.Code == CodeNetwork:
			return transportClass(ae.Err)
		}
		switch ae.Code {
		case CodeJSONRPC, CodeTokenExpired, CodeAgentRevoked, CodeActionDenied,
			CodeElevationRequired, CodeGuardianUnavailable, CodeAuthFailed, CodeAuthDenied, CodeNotFound:
			return strings.ToLower(ae.Code)
		}
		return "_OTHER"
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, transport.ErrBodyTooLarge):
		return transportClass(err)
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return transportClass(err)
	}
	return "_OTHER"
}

// transportClass classifies a failure to get an answer.
func transportClass(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, transport.ErrBodyTooLarge):
		return "decode"
	}
	return "network"
}

// observer is a Client's installed hooks with what they need to describe
// requests. A nil *observer is valid and does nothing: every call site is a
// single method call that costs a nil check when nothing is installed.
type observer struct {
	h Observer
	// requests is set when a request or attempt hook is installed.
	requests bool
	// servers describes the gateway, auth and audit services, by baseKind.
	servers [3]serverInfo
}

type serverInfo struct {
	scheme, host, prefix string
	port                 int
}

// initObserver installs the hooks of cfg, if any, on c and its token cache.
func (c *Client) initObserver(h *Observer) {
	if h == nil {
		return
	}
	o := &observer{h: *h, requests: h.RequestStart != nil || h.AttemptStart != nil || h.AttemptDone != nil || h.RequestDone != nil}
	for i, u := range [3]string{c.baseURL, c.authURL, c.auditURL} {
		o.servers[i] = parseServer(u)
	}
	c.obs = o
	c.tokens.obs = o
}

// parseServer splits a service URL (already validated) for RequestInfo.
func parseServer(raw string) serverInfo {
	u, err := url.Parse(raw)
	if err != nil {
		return serverInfo{}
	}
	s := serverInfo{scheme: u.Scheme, host: u.Hostname(), prefix: u.EscapedPath()}
	if p, err := strconv.Atoi(u.Port()); err == nil {
		s.port = p
	} else if u.Scheme == "https" {
		s.port = 443
	} else {
		s.port = 80
	}
	return s
}

// do sends r through send, reporting the call and its attempts to the
// observer when one is installed.
func (c *Client) do(ctx context.Context, r *request, opts []RequestOption) (*response, error) {
	if c.obs == nil || !c.obs.requests || ctx == nil {
		return c.send(ctx, r, opts)
	}
	return c.obs.do(ctx, c, r, opts)
}

func (o *observer) do(ctx context.Context, c *Client, r *request, opts []RequestOption) (*response, error) {
	info := o.describe(r)
	start := time.Now()
	if o.h.RequestStart != nil {
		if nctx := o.h.RequestStart(ctx, info); nctx != nil {
			ctx = nctx
		}
	}
	att := &attemptObserver{o: o, info: info}
	r.observer = att
	resp, err := c.send(ctx, r, opts)
	if o.h.RequestDone != nil {
		res := RequestResult{Attempts: att.n, Err: err, ErrorClass: ErrorClass(err), Duration: time.Since(start)}
		var ae *AgentTrustError
		switch {
		case resp != nil:
			res.Status = resp.status
		case errors.As(err, &ae):
			res.Status = ae.Status
		}
		o.h.RequestDone(ctx, info, res)
	}
	return resp, err
}

// describe builds the RequestInfo of r: its operation and URL template come
// from the route table, never from the expanded path.
func (o *observer) describe(r *request) RequestInfo {
	s := o.servers[r.base]
	info := RequestInfo{Operation: "request", Method: r.method, Scheme: s.scheme, ServerAddress: s.host, ServerPort: s.port}
	if rt := lookupRoute(r.method, r.path); rt != nil {
		info.Operation = rt.op
		info.URLTemplate = s.prefix + rt.tmpl
	}
	return info
}

// attemptObserver passes one call's attempts to the hooks.
type attemptObserver struct {
	o     *observer
	info  RequestInfo
	n     int // attempts started
	start time.Time
}

func (a *attemptObserver) AttemptStart(ctx context.Context, n int, header http.Header) context.Context {
	a.n = n
	a.start = time.Now()
	if a.o.h.AttemptStart != nil {
		a.o.h.AttemptStart(ctx, a.info, n, header)
	}
	return ctx
}

func (a *attemptObserver) AttemptDone(ctx context.Context, n int, status int, err error) {
	if a.o.h.AttemptDone == nil {
		return
	}
	res := AttemptResult{Attempt: n, Status: status, Duration: time.Since(a.start)}
	switch {
	case err != nil:
		res.ErrorClass = ErrorClass(err)
	case status >= 400:
		res.ErrorClass = strconv.Itoa(status)
	}
	a.o.h.AttemptDone(ctx, a.info, res)
}

// cache reports a cache lookup.
func (o *observer) cache(ctx context.Context, kind CacheKind, hit bool) {
	if o != nil && o.h.CacheLookup != nil {
		o.h.CacheLookup(ctx, kind, hit)
	}
}

// route is one endpoint the SDK calls: the operation name observers see and
// the path template.
type route struct {
	method, tmpl, op string
	segs             []string // tmpl split at "/", for templates with placeholders
}

// routes lists every endpoint the SDK calls. TestRouteTableCoversEveryPath
// fails when a path used in a request is missing here.
var routes = []*route{
	{method: http.MethodGet, tmpl: "/health", op: "client.health"},

	{method: http.MethodPost, tmpl: "/api/v1/agents", op: "agents.create"},
	{method: http.MethodGet, tmpl: "/api/v1/agents", op: "agents.list"},
	{method: http.MethodGet, tmpl: "/api/v1/agents/{agent_id}", op: "agents.get"},
	{method: http.MethodPost, tmpl: "/api/v1/agents/{agent_id}/revoke", op: "agents.revoke"},

	{method: http.MethodPost, tmpl: "/api/v1/agent-tokens/issue", op: "tokens.issue"},
	{method: http.MethodPost, tmpl: "/api/v1/agent-tokens/introspect", op: "tokens.introspect"},
	{method: http.MethodPost, tmpl: "/api/v1/agent-tokens/revoke", op: "tokens.revoke"},

	{method: http.MethodPost, tmpl: "/api/v1/agenttrust/check", op: "actions.check"},
	{method: http.MethodPost, tmpl: "/api/v1/telemetry/report", op: "telemetry.report"},

	{method: http.MethodPost, tmpl: "/mcp/sessions/init", op: "sessions.init_session"},
	{method: http.MethodGet, tmpl: "/mcp/sessions/{session_id}", op: "sessions.get_session"},
	{method: http.MethodPost, tmpl: "/api/v1/agenttrust/api-sessions/init", op: "sessions.init_api_session"},

	{method: http.MethodGet, tmpl: "/mcp/approvals/{approval_id}", op: "approvals.get"},
	{method: http.MethodPost, tmpl: "/mcp/approvals/{approval_id}/approve", op: "approvals.approve"},
	{method: http.MethodPost, tmpl: "/mcp/approvals/{approval_id}/deny", op: "approvals.deny"},

	{method: http.MethodPost, tmpl: "/api/v1/agents/{agent_id}/card", op: "agent_cards.generate"},
	{method: http.MethodGet, tmpl: "/api/v1/agents/{agent_id}/card", op: "agent_cards.get"},
	{method: http.MethodPut, tmpl: "/api/v1/agents/{agent_id}/card/publish", op: "agent_cards.publish"},
	{method: http.MethodGet, tmpl: "/a2a/agents/{agent_id}/agent.json", op: "agent_cards.get_public"},

	{method: http.MethodPost, tmpl: "/a2a", op: "a2a.task"},
	{method: http.MethodPost, tmpl: "/a2a/agents/{agent_id}", op: "a2a.send_message"},

	{method: http.MethodPost, tmpl: "/mcp/servers", op: "mcp.register_server"},
	{method: http.MethodGet, tmpl: "/mcp/servers", op: "mcp.list_servers"},
	{method: http.MethodDelete, tmpl: "/mcp/servers/{server_id}", op: "mcp.remove_server"},
	{method: http.MethodPost, tmpl: "/mcp/{server_id}", op: "mcp.call_tool"},

	{method: http.MethodPost, tmpl: "/api/v1/delegations", op: "delegations.create"},
	{method: http.MethodGet, tmpl: "/api/v1/delegations", op: "delegations.list"},
	{method: http.MethodDelete, tmpl: "/api/v1/delegations/{delegation_id}", op: "delegations.revoke"},
	{method: http.MethodPost, tmpl: "/api/v1/delegations/{delegation_id}/session", op: "delegations.init_session"},

	{method: http.MethodPost, tmpl: "/api/v1/federation/providers", op: "federation.register_provider"},
	{method: http.MethodGet, tmpl: "/api/v1/federation/providers", op: "federation.list_providers"},
	{method: http.MethodDelete, tmpl: "/api/v1/federation/providers/{provider_id}", op: "federation.delete_provider"},
	{method: http.MethodPost, tmpl: "/api/v1/federation/tokens/introspect", op: "federation.introspect_token"},
	{method: http.MethodPost, tmpl: "/api/v1/federation/tokens/verify", op: "federation.verify_token"},
	{method: http.MethodPost, tmpl: "/api/v1/federation/sessions/init", op: "federation.init_session"},
	{method: http.MethodPost, tmpl: "/api/v1/federation/tokens/issue", op: "federation.issue_id_token"},

	{method: http.MethodPost, tmpl: "/api/v1/siem/destinations", op: "streaming.create"},
	{method: http.MethodGet, tmpl: "/api/v1/siem/destinations", op: "streaming.list"},
	{method: http.MethodGet, tmpl: "/api/v1/siem/destinations/{destination_id}", op: "streaming.get"},
	{method: http.MethodPut, tmpl: "/api/v1/siem/destinations/{destination_id}", op: "streaming.update"},
	{method: http.MethodDelete, tmpl: "/api/v1/siem/destinations/{destination_id}", op: "streaming.delete"},
	{method: http.MethodGet, tmpl: "/api/v1/siem/destinations/{destination_id}/logs", op: "streaming.delivery_log"},
	{method: http.MethodPost, tmpl: "/api/v1/siem/destinations/{destination_id}/test", op: "streaming.test"},

	{method: http.MethodPost, tmpl: "/api/v1/wimse/token", op: "wimse.issue_token"},
	{method: http.MethodPost, tmpl: "/api/v1/wimse/verify", op: "wimse.verify_token"},
	{method: http.MethodPost, tmpl: "/api/v1/agents/{agent_id}/challenge", op: "wimse.challenge"},
}

// exactRoutes indexes the templates without placeholders by "METHOD path";
// patternRoutes holds the others.
var exactRoutes, patternRoutes = indexRoutes(routes)

func indexRoutes(rs []*route) (map[string]*route, []*route) {
	exact := make(map[string]*route)
	var pattern []*route
	for _, rt := range rs {
		if !strings.Contains(rt.tmpl, "{") {
			exact[rt.method+" "+rt.tmpl] = rt
			continue
		}
		rt.segs = strings.Split(rt.tmpl, "/")
		pattern = append(pattern, rt)
	}
	return exact, pattern
}

// lookupRoute finds the route of an escaped request path. A literal
// template wins over a pattern; among patterns, the one whose first
// placeholder comes latest wins (so ".../card" beats "/{x}/...").
func lookupRoute(method, path string) *route {
	if rt := exactRoutes[method+" "+path]; rt != nil {
		return rt
	}
	var best *route
	bestLiteral := -1
	for _, rt := range patternRoutes {
		if rt.method != method {
			continue
		}
		if lit, ok := matchSegments(rt.segs, path); ok && lit > bestLiteral {
			best, bestLiteral = rt, lit
		}
	}
	return best
}

// matchSegments matches path against the template segments segs, one
// placeholder per non-empty segment. It returns the index of the first
// placeholder, a measure of how specific the match is.
func matchSegments(segs []string, path string) (int, bool) {
	first := -1
	for i, seg := range segs {
		var part string
		if i == len(segs)-1 {
			part, path = path, ""
			if strings.IndexByte(part, '/') >= 0 {
				return 0, false
			}
		} else {
			j := strings.IndexByte(path, '/')
			if j < 0 {
				return 0, false
			}
			part, path = path[:j], path[j+1:]
		}
		if strings.HasPrefix(seg, "{") {
			if part == "" {
				return 0, false
			}
			if first < 0 {
				first = i
			}
		} else if part != seg {
			return 0, false
		}
	}
	return first, true
}
