package agenttrust

import (
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Error codes, kept exactly as the Python SDK spells them so that logs from
// both SDKs compare. HTTP statuses without a code of their own use
// "HTTP_<status>", e.g. "HTTP_500".
const (
	CodeValidation          = "VALIDATION_ERROR"
	CodeAuthFailed          = "AUTH_FAILED"
	CodeAuthDenied          = "AUTH_DENIED"
	CodeNotFound            = "NOT_FOUND"
	CodeRateLimited         = "HTTP_429"
	CodeNetwork             = "NETWORK_ERROR"
	CodeDecode              = "DECODE_ERROR"
	CodeJSONRPC             = "JSONRPC_ERROR"
	CodeTokenExpired        = "TOKEN_EXPIRED"
	CodeAgentRevoked        = "AGENT_REVOKED"
	CodeActionDenied        = "ACTION_DENIED"
	CodeElevationRequired   = "ELEVATION_REQUIRED"
	CodeGuardianUnavailable = "GUARDIAN_UNAVAILABLE"
)

// Sentinel errors for errors.Is. Every error the SDK returns matches
// ErrAgentTrust (the Python base class); each other sentinel matches only the
// errors of its own kind.
var (
	ErrAgentTrust          = errors.New("agenttrust: error")
	ErrValidation          = errors.New("agenttrust: validation error")
	ErrAuthentication      = errors.New("agenttrust: authentication failed")
	ErrAuthorization       = errors.New("agenttrust: authorization denied")
	ErrNotFound            = errors.New("agenttrust: not found")
	ErrRateLimited         = errors.New("agenttrust: rate limited")
	ErrNetwork             = errors.New("agenttrust: network error")
	ErrDecode              = errors.New("agenttrust: decode error")
	ErrJSONRPC             = errors.New("agenttrust: JSON-RPC error")
	ErrTokenExpired        = errors.New("agenttrust: token expired")
	ErrAgentRevoked        = errors.New("agenttrust: agent revoked")
	ErrActionDenied        = errors.New("agenttrust: action denied")
	ErrElevationRequired   = errors.New("agenttrust: elevation required")
	ErrGuardianUnavailable = errors.New("agenttrust: guardian unavailable")
)

// errorKind is what a code selects: the sentinel errors.Is matches, and the
// kind-specific type wrapKind wraps the error in (none when wrap is nil:
// the error stays an *AgentTrustError).
type errorKind struct {
	sentinel error
	wrap     func(*AgentTrustError) error
}

var kindByCode = map[string]errorKind{
	CodeValidation:          {ErrValidation, wrapAs[ValidationError]},
	CodeAuthFailed:          {ErrAuthentication, wrapAs[AuthenticationError]},
	CodeAuthDenied:          {ErrAuthorization, wrapAs[AuthorizationError]},
	CodeNotFound:            {ErrNotFound, wrapAs[NotFoundError]},
	CodeRateLimited:         {ErrRateLimited, wrapAs[RateLimitError]},
	CodeNetwork:             {ErrNetwork, wrapAs[NetworkError]},
	CodeDecode:              {ErrDecode, wrapAs[DecodeError]},
	CodeJSONRPC:             {ErrJSONRPC, nil},
	CodeTokenExpired:        {ErrTokenExpired, wrapAs[TokenExpiredError]},
	CodeAgentRevoked:        {ErrAgentRevoked, wrapAs[AgentRevokedError]},
	CodeActionDenied:        {ErrActionDenied, nil},
	CodeElevationRequired:   {ErrElevationRequired, nil},
	CodeGuardianUnavailable: {ErrGuardianUnavailable, nil},
}

// AgentTrustError is the one error model of the SDK. Every error it returns
// is, or wraps, an *AgentTrustError, so errors.As with this type always
// succeeds and gives the details.
//
// The kind-specific types (ValidationError, NetworkError, ...) wrap it; they
// exist so that errors.As can select a kind the way Python's except clauses
// do. errors.Is with the sentinels (ErrNotFound, ...) selects kinds too.
type AgentTrustError struct {
	// Status is the HTTP status, or 0 when no HTTP response was received.
	Status int
	// Code is the Python SDK's code: VALIDATION_ERROR, AUTH_FAILED, HTTP_500, ...
	Code string
	// Message is the human-readable reason, taken from the response when it
	// has one.
	Message string
	// Details is the error body when it is a JSON object, or
	// {"message": text} for a non-JSON body; empty otherwise. The API key and
	// tokens of the request are redacted from its strings.
	Details map[string]any
	// RequestID is the X-Request-ID response header, when present.
	RequestID string
	// Body is the raw response body (at most 1 MiB of an error body). It is
	// not redacted: a server that echoes credentials echoes them here.
	Body []byte
	// RetryAfter is the parsed Retry-After header of a 429; 0 when absent.
	RetryAfter time.Duration
	// Err is the underlying cause, if any (a transport error, a context
	// error, a JSON syntax error).
	Err error
}

// Limits on what Error and GoString show of the two fields a server fills
// freely; the fields themselves keep the full (redacted) values.
const (
	maxErrorMessage   = 1024
	maxErrorRequestID = 128
)

// Error returns "agenttrust: <message> (code <code>[, status <n>][, request <id>])".
// It never contains an API key or a token. Its size is bounded: at most
// 1 KiB of the message and 128 bytes of the request id are shown, cut at a
// UTF-8 boundary and marked; Message, RequestID, Details and Body hold the
// rest.
func (e *AgentTrustError) Error() string {
	s := "agenttrust: " + clip(e.Message, maxErrorMessage) + " (code " + clip(e.Code, maxErrorRequestID)
	if e.Status != 0 {
		s += ", status " + strconv.Itoa(e.Status)
	}
	if e.RequestID != "" {
		s += ", request " + clip(e.RequestID, maxErrorRequestID)
	}
	return s + ")"
}

// clip returns s cut to at most n bytes, at a rune boundary, followed by a
// note of how much was left out.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "... [" + strconv.Itoa(len(s)-cut) + " more bytes]"
}

// GoString makes %#v print the error's identifying fields only. Details and
// Body hold the server's answer, which may echo a key or a token, so they are
// left out; read them from the fields.
func (e *AgentTrustError) GoString() string {
	return "&agenttrust.AgentTrustError{Status:" + strconv.Itoa(e.Status) + ", Code:" + strconv.Quote(clip(e.Code, maxErrorRequestID)) +
		", Message:" + strconv.Quote(clip(e.Message, maxErrorMessage)) + ", RequestID:" + strconv.Quote(clip(e.RequestID, maxErrorRequestID)) +
		", RetryAfter:" + e.RetryAfter.String() + "}"
}

// Format prints Error for every verb but %#v (GoString), so that no verb
// (%d, %x, ...) can dump the Details or Body a server filled with a secret.
func (e *AgentTrustError) Format(f fmt.State, verb rune) {
	formatRedacted(f, verb, errorStringer{e}, e)
}

type errorStringer struct{ e *AgentTrustError }

func (s errorStringer) String() string { return s.e.Error() }

// Unwrap returns the underlying cause.
func (e *AgentTrustError) Unwrap() error { return e.Err }

// Is reports whether target is ErrAgentTrust or the sentinel of e's code.
func (e *AgentTrustError) Is(target error) bool {
	if target == ErrAgentTrust {
		return true
	}
	if k, ok := kindByCode[e.Code]; ok && k.sentinel == target {
		return true
	}
	return false
}

// The kind-specific error types. Each embeds the *AgentTrustError (so its
// fields read directly: err.Status, err.Code), unwraps to it (so errors.As for
// *AgentTrustError works too), and matches its sentinel and ErrAgentTrust.
// Each is named after the Python SDK's exception class of the same name,
// except NotFoundError, RateLimitError and DecodeError, which Python folds
// into its base AgentTrustError or does not catch.
type (
	// ValidationError is returned for an HTTP 400 and for a client-side
	// check that fails before any I/O (Status 0).
	ValidationError struct{ *AgentTrustError }
	// AuthenticationError is returned for an HTTP 401.
	AuthenticationError struct{ *AgentTrustError }
	// AuthorizationError is returned for an HTTP 403.
	AuthorizationError struct{ *AgentTrustError }
	// NotFoundError is returned for an HTTP 404.
	NotFoundError struct{ *AgentTrustError }
	// RateLimitError is returned for an HTTP 429; RetryAfter holds the
	// server's hint.
	RateLimitError struct{ *AgentTrustError }
	// NetworkError is returned when no HTTP response was received (refused,
	// reset, timeout, cancelled). errors.Is(err, context.DeadlineExceeded)
	// and context.Canceled work through it.
	NetworkError struct{ *AgentTrustError }
	// DecodeError is returned for a 2xx body that is not the JSON the call
	// expects.
	DecodeError struct{ *AgentTrustError }
	// TokenExpiredError is never returned by the SDK: it is kept for parity
	// with the Python SDK's TokenExpiredError class (code TOKEN_EXPIRED),
	// which the Python transport never raises either. NewError with
	// CodeTokenExpired builds one, for code that mirrors Python's.
	TokenExpiredError struct{ *AgentTrustError }
	// AgentRevokedError is never returned by the SDK: it is kept for parity
	// with the Python SDK's AgentRevokedError class (code AGENT_REVOKED),
	// which the Python transport never raises either. NewError with
	// CodeAgentRevoked builds one, for code that mirrors Python's.
	AgentRevokedError struct{ *AgentTrustError }
)

func (e *ValidationError) Unwrap() error     { return e.AgentTrustError }
func (e *AuthenticationError) Unwrap() error { return e.AgentTrustError }
func (e *AuthorizationError) Unwrap() error  { return e.AgentTrustError }
func (e *NotFoundError) Unwrap() error       { return e.AgentTrustError }
func (e *RateLimitError) Unwrap() error      { return e.AgentTrustError }
func (e *NetworkError) Unwrap() error        { return e.AgentTrustError }
func (e *DecodeError) Unwrap() error         { return e.AgentTrustError }
func (e *TokenExpiredError) Unwrap() error   { return e.AgentTrustError }
func (e *AgentRevokedError) Unwrap() error   { return e.AgentTrustError }

// JSONRPCError is a JSON-RPC "error" member in a 2xx reply from the A2A or MCP
// endpoints. The Python SDK swallowed these.
type JSONRPCError struct {
	*AgentTrustError
	RPCCode    int    // error.code
	RPCMessage string // error.message
	RPCData    []byte // raw JSON of error.data; nil when absent
}

// Unwrap returns the embedded *AgentTrustError.
func (e *JSONRPCError) Unwrap() error { return e.AgentTrustError }

// wrapKind returns the kind-specific wrapper for base's code.
func wrapKind(base *AgentTrustError) error {
	if k := kindByCode[base.Code]; k.wrap != nil {
		return k.wrap(base)
	}
	return base
}

// wrapAs wraps e in the kind-specific type T.
func wrapAs[T ~struct{ *AgentTrustError }, P kindError[T]](e *AgentTrustError) error {
	return P(&T{e})
}

// kindError is a pointer to a kind-specific error type.
type kindError[T any] interface {
	*T
	error
}

// NewError builds an SDK error with the given code and message, wrapped in the
// kind-specific type for that code (e.g. *ValidationError for
// VALIDATION_ERROR), with cause (may be nil) as the error it unwraps to.
//
// Code built on the SDK needs it so that its errors join the SDK's model
// (errors.Is with ErrAgentTrust and the code's sentinel, errors.As with
// *AgentTrustError and the kind types): a custom KeyStore reporting a bad
// agent id or a failing backend (CodeValidation, CodeKeyStore; for a missing
// key use NewKeyNotFoundError), or a framework adapter rejecting its input.
// The guard, tokenauth and the integrations use it for the same reason.
func NewError(code, message string, cause error) error {
	return wrapKind(&AgentTrustError{Code: code, Message: message, Err: cause})
}

// validationErr is a client-side check failing before any I/O.
func validationErr(message string) error {
	return NewError(CodeValidation, message, nil)
}

// networkErr wraps a transport failure.
func networkErr(cause error) error {
	return NewError(CodeNetwork, "Network error: "+cause.Error(), cause)
}
