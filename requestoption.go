package agenttrust

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// RequestOption changes one call, and only that call: every method that
// talks to the gateway takes them last, as opts ...RequestOption. They are
// made by WithRequestHeader, WithRequestTimeout, WithRequestRetryPolicy,
// WithRequestMaxRetries, WithRequestRetryUntilDeadline and WithResponseInto;
// the zero RequestOption does nothing.
//
// Precedence: a request option wins over the matching client Option
// (WithTimeout, WithRetryPolicy) for its call. Request options apply in
// order: a later timeout, retry policy or header of the same name replaces
// an earlier one, and WithRequestMaxRetries changes the retry policy in
// effect at its place in the list. An invalid value (a negative timeout, a
// header the SDK sets itself, ...) makes the call return a VALIDATION_ERROR
// before anything is sent.
//
// A RequestOption is a small value: making one allocates nothing, and one
// may be reused by many calls, concurrently too. Options written in a call
// cost it no allocation of their own (the variadic slice stays on the
// caller's stack); a header costs the one value slice net/http's Header
// needs, and a retry policy option one copy of the policy.
type RequestOption struct {
	kind   requestOptionKind
	name   string // header name, canonical
	value  string // header value
	d      time.Duration
	policy RetryPolicy
	into   *Response
}

// String describes the option; a header's value is never shown, since it
// may be a token.
func (o RequestOption) String() string {
	switch o.kind {
	case optHeader:
		return "agenttrust.WithRequestHeader(" + strconv.Quote(o.name) + ", " + redactedSecret(o.value) + ")"
	case optTimeout:
		return "agenttrust.WithRequestTimeout(" + o.d.String() + ")"
	case optRetryPolicy:
		return fmt.Sprintf("agenttrust.WithRequestRetryPolicy(%+v)", o.policy)
	case optMaxRetries:
		return "agenttrust.WithRequestMaxRetries(" + strconv.Itoa(o.policy.MaxRetries) + ")"
	case optUntilDeadline:
		return "agenttrust.WithRequestRetryUntilDeadline()"
	case optResponseInto:
		return "agenttrust.WithResponseInto(...)"
	}
	return "agenttrust.RequestOption{}"
}

// GoString is String, so that %#v hides a header's value too.
func (o RequestOption) GoString() string { return o.String() }

// Format prints String for every verb.
func (o RequestOption) Format(f fmt.State, verb rune) { formatRedacted(f, verb, o, o) }

// LogValue hides a header's value from log/slog.
func (o RequestOption) LogValue() slog.Value { return slog.StringValue(o.String()) }

type requestOptionKind uint8

const (
	optNone requestOptionKind = iota
	optHeader
	optTimeout
	optRetryPolicy
	optMaxRetries
	optUntilDeadline
	optResponseInto
)

// Response is the metadata of a call's HTTP response, filled in by
// WithResponseInto.
type Response struct {
	// StatusCode is the HTTP status, a 2xx.
	StatusCode int
	// Header is the response's header.
	Header http.Header
	// RequestID is the X-Request-Id header, with any secret of the call
	// redacted.
	RequestID string
	// Attempts is how many times the request was sent, retries included.
	Attempts int
}

// WithRequestHeader sets a header on this call's request (replacing an
// earlier WithRequestHeader of the same name). It cannot replace what the SDK
// sends itself: the API key (X-API-Key), the Authorization and DPoP headers
// of agent credentials, Accept, Content-Type, Content-Length, User-Agent
// (see WithUserAgentSuffix), Host and the hop-by-hop headers, nor a header
// the call sets for its own parameters (X-Agent-ID on an MCP tool call, say):
// asking for one is a VALIDATION_ERROR. So is a name that is not an HTTP
// token or a value with a control character. The value is treated as a
// secret: it is redacted from errors, like tokens.
func WithRequestHeader(name, value string) RequestOption {
	return RequestOption{kind: optHeader, name: name, value: value}
}

// WithRequestTimeout bounds this call, retries included, in place of the
// client's timeout (WithTimeout). A deadline on ctx still applies when it is
// earlier. d must be positive.
func WithRequestTimeout(d time.Duration) RequestOption {
	return RequestOption{kind: optTimeout, d: d}
}

// WithRequestRetryPolicy retries this call as p says, in place of the
// client's policy (WithRetryPolicy). Negative values are a VALIDATION_ERROR.
func WithRequestRetryPolicy(p RetryPolicy) RequestOption {
	return RequestOption{kind: optRetryPolicy, policy: p}
}

// WithRequestMaxRetries sets the number of retries of this call after the
// first attempt, keeping the rest of the retry policy in effect (the
// client's, or that of an earlier WithRequestRetryPolicy); 0 disables
// retries. n must not be negative.
func WithRequestMaxRetries(n int) RequestOption {
	return RequestOption{kind: optMaxRetries, policy: RetryPolicy{MaxRetries: n}}
}

// WithRequestRetryUntilDeadline keeps retrying this call, if it is safe to
// repeat (a check, a read), after a transport failure or a 429, 502, 503 or
// 504, with the retry policy's backoff and jitter until ctx's deadline (or
// the call's timeout) would be passed, instead of stopping after MaxRetries:
// an action check rides out a gateway restart shorter than its deadline. A
// 429 whose Retry-After does not fit in the time left is returned at once. A
// policy with MaxRetries 0, or a zero InitialBackoff, still disables or
// bounds the retries. The guard package uses it on every check.
func WithRequestRetryUntilDeadline() RequestOption {
	return RequestOption{kind: optUntilDeadline}
}

// WithResponseInto fills *dst with the metadata of this call's response
// (status, header, request id, attempts) when the gateway answers with a 2xx
// status, even if the body then fails to decode. On any other failure *dst
// is left alone; the error carries the status and request id instead
// (AgentTrustError). dst must not be nil.
func WithResponseInto(dst *Response) RequestOption {
	return RequestOption{kind: optResponseInto, into: dst}
}
