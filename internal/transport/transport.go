// Package transport sends the SDK's HTTP requests: headers, retries with
// backoff, response size limits and redirect refusal. It knows nothing about
// the AgentTrust API itself; the root package builds requests, maps statuses
// to errors and decodes bodies.
package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Body size limits. A success body is decoded, so it may be larger; an error
// body only feeds a message and diagnostics.
const (
	MaxSuccessBody = 10 << 20
	MaxErrorBody   = 1 << 20
)

// ErrBodyTooLarge is returned when a success body exceeds MaxSuccessBody.
var ErrBodyTooLarge = errors.New("response body exceeds the size limit")

// RetryPolicy controls the retries of requests that failed in transit or were
// answered with 429, 502, 503 or 504.
type RetryPolicy struct {
	MaxRetries     int           // retries after the first attempt; 0 disables them
	InitialBackoff time.Duration // first backoff, doubled on each retry
	MaxBackoff     time.Duration // cap on the computed backoff
	MaxRetryAfter  time.Duration // cap on a server-chosen Retry-After delay
}

// Config is the immutable configuration of a Transport.
type Config struct {
	HTTPClient *http.Client
	UserAgent  string
	Retry      RetryPolicy
	// Sleep waits for d or until ctx ends. Tests replace it to run instantly.
	Sleep  func(ctx context.Context, d time.Duration) error
	Logger *slog.Logger
}

// Request is one logical API call; the transport may send it several times.
type Request struct {
	Method string
	URL    string
	Body   []byte      // nil: no body (Content-Length 0 on POST/PUT)
	Header http.Header // per-request headers, e.g. X-Agent-ID; may be nil
	APIKey string      // sent as X-API-Key when non-empty
	// Idempotent marks a request that is safe to send again after any
	// transport failure or a retryable status. Other requests
	// are re-sent only when the connection failed before anything was written.
	Idempotent bool
	// BeforeAttempt, when set, runs before every attempt, retries included,
	// and adds that attempt's own headers to h (a single-use proof, say),
	// never one the request sets otherwise (Accept, User-Agent,
	// Content-Type, X-API-Key, Header, HeaderNames). Its error ends the
	// call unsent, as a *HookError.
	BeforeAttempt AttemptHook
	// UntilDeadline keeps retrying an idempotent request, with the policy's
	// backoff and jitter, until ctx's deadline instead of stopping after
	// MaxRetries: a check rides out a gateway restart within its own
	// deadline. Without a deadline on ctx, or with a zero InitialBackoff,
	// MaxRetries still bounds the retries; MaxRetries 0 disables them.
	UntilDeadline bool
	// Observer, when set, is told about every attempt (see attempt).
	Observer AttemptObserver
	// Retry, when set, replaces Config.Retry for this request.
	Retry *RetryPolicy
	// HeaderNames and HeaderValues add one header per name, after Header,
	// with the value at the same index; the value is sent from the slice
	// itself, not copied.
	HeaderNames, HeaderValues []string
	// Gate, when set, is the DialGate slot of the URL's dial address: the
	// request counts as in flight there from before it is sent until its
	// response body is closed. Every request sent through a gated
	// http.Transport must carry its slot, or its dial could be held back.
	Gate *GateSlot
}

// AttemptHook adds the headers of one attempt: see Request.BeforeAttempt. It
// is an interface, not a func, so that a caller can pass a value it already
// holds instead of allocating a closure per request.
type AttemptHook interface {
	BeforeAttempt(ctx context.Context, h http.Header) error
}

// AttemptFunc is a func used as an AttemptHook.
type AttemptFunc func(ctx context.Context, h http.Header) error

// BeforeAttempt calls f.
func (f AttemptFunc) BeforeAttempt(ctx context.Context, h http.Header) error { return f(ctx, h) }

// HookError is a failure of Request.BeforeAttempt; nothing was sent for the
// attempt and nothing is retried.
type HookError struct{ Err error }

func (e *HookError) Error() string { return e.Err.Error() }

// Unwrap returns the hook's error.
func (e *HookError) Unwrap() error { return e.Err }

// Response is the final HTTP answer to a Request.
type Response struct {
	Status    int
	Header    http.Header
	Body      []byte
	Truncated bool // an error body longer than MaxErrorBody was cut
	Attempts  int
}

// Transport sends Requests. It is safe for concurrent use.
type Transport struct {
	cfg Config
	// Header values built once, not per request: net/http only reads them.
	userAgent []string
	apiKey    atomic.Pointer[keyHeader] // the last X-API-Key value sent
}

// keyHeader is an API key and its header value.
type keyHeader struct {
	key   string
	value []string
}

// New returns a Transport for cfg. A nil Sleep uses a timer honouring ctx.
func New(cfg Config) *Transport {
	if cfg.Sleep == nil {
		cfg.Sleep = SleepContext
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(discardHandler{})
	}
	return &Transport{cfg: cfg, userAgent: []string{cfg.UserAgent}}
}

// apiKeyValue returns the X-API-Key header value for key, reusing the last
// one while the key is unchanged; a new key (SetAPIKey) swaps it atomically.
func (t *Transport) apiKeyValue(key string) []string {
	if kh := t.apiKey.Load(); kh != nil && kh.key == key {
		return kh.value
	}
	kh := &keyHeader{key: key, value: []string{key}}
	t.apiKey.Store(kh)
	return kh.value
}

// SleepContext waits for d, returning ctx.Err() early when ctx ends.
func SleepContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Do sends req, retrying as the policy allows. It returns a Response for any
// HTTP status; an error means no usable response arrived (the cause is
// wrapped, ctx errors included) or a success body was too large, in which
// case the Response, without its body, is returned along with the error.
//
// When the deadline cuts short a retry of an HTTP answer (a 503, say), that
// answer is returned rather than the timeout: the status, Retry-After and
// request id say more than "deadline exceeded".
func (t *Transport) Do(ctx context.Context, req *Request) (*Response, error) {
	var retried *Response // the HTTP answer the current attempt retries
	for attempt := 1; ; attempt++ {
		var extra http.Header
		if req.BeforeAttempt != nil {
			// Room for the request's usual headers too: this map becomes
			// the attempt's request header (see once).
			extra = make(http.Header, 8)
			if err := req.BeforeAttempt.BeforeAttempt(ctx, extra); err != nil {
				return nil, &HookError{Err: err}
			}
		}
		resp, written, err := t.attempt(ctx, req, attempt, extra)
		if err == nil {
			resp.Attempts = attempt
		} else if retried != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			retried.Attempts = attempt
			return retried, nil
		}
		retry, delay := t.shouldRetry(ctx, req, resp, written, err, attempt)
		if !retry {
			return resp, err
		}
		retried = nil
		if err == nil {
			retried = resp
		}
		t.cfg.Logger.LogAttrs(ctx, slog.LevelDebug, "agenttrust: retrying request",
			slog.String("method", req.Method), slog.Int("attempt", attempt),
			slog.Duration("delay", delay), slog.String("reason", retryReason(resp, err)))
		if serr := t.cfg.Sleep(ctx, delay); serr != nil {
			if err == nil && errors.Is(serr, context.DeadlineExceeded) {
				// The deadline ran out during the wait (a loaded machine can
				// overrun even a wait cut to fit): the answer being retried
				// says more than the timeout, as above.
				resp.Attempts = attempt
				return resp, nil
			}
			if err == nil {
				err = fmt.Errorf("HTTP %d, retry abandoned: %w", resp.Status, serr)
			} else {
				err = fmt.Errorf("%w (retry abandoned: %w)", err, serr)
			}
			return nil, err
		}
	}
}

func retryReason(resp *Response, err error) string {
	if err != nil {
		return err.Error()
	}
	return "HTTP " + strconv.Itoa(resp.Status)
}

// shouldRetry decides, in order: the caller's ctx, the budget, the failure
// kind, then whether the wait fits before ctx's deadline.
//
// A wait never runs into the deadline. A Retry-After (capped) that does not
// fit in what is left ends the retries at once, so the caller gets the real
// answer (its status, Retry-After and request id) instead of a timeout. The
// policy's own backoff is cut to half of what is left, so that the attempt
// after it has time to finish, but never below the shortest backoff the
// policy itself would choose (half of InitialBackoff): with less than one
// InitialBackoff left, no retry is made.
func (t *Transport) shouldRetry(ctx context.Context, req *Request, resp *Response, written bool, err error, attempt int) (bool, time.Duration) {
	p := t.policy(req)
	if p.MaxRetries <= 0 || ctx.Err() != nil {
		return false, 0
	}
	deadline, hasDeadline := ctx.Deadline()
	// UntilDeadline lifts the MaxRetries budget only where the deadline and a
	// positive backoff bound the loop.
	if attempt > p.MaxRetries && !(req.UntilDeadline && hasDeadline && p.InitialBackoff > 0) {
		return false, 0
	}
	var delay time.Duration
	serverAsked := false
	if err != nil {
		if errors.Is(err, ErrBodyTooLarge) {
			return false, 0
		}
		if !req.Idempotent && written {
			return false, 0
		}
		delay = p.backoff(attempt)
	} else {
		if !req.Idempotent {
			return false, 0
		}
		switch resp.Status {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		default:
			return false, 0
		}
		if ra, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			delay, serverAsked = min(ra, p.MaxRetryAfter), true
		} else {
			delay = p.backoff(attempt)
		}
	}
	if !hasDeadline {
		return true, delay
	}
	left := time.Until(deadline)
	if serverAsked {
		return delay < left, delay
	}
	if left <= 0 || left < p.InitialBackoff {
		return false, 0
	}
	return true, min(delay, left/2)
}

// RetryPolicy returns the Transport's retry policy.
func (t *Transport) RetryPolicy() RetryPolicy { return t.cfg.Retry }

// policy is the retry policy of req: its own, or the Transport's.
func (t *Transport) policy(req *Request) *RetryPolicy {
	if req.Retry != nil {
		return req.Retry
	}
	return &t.cfg.Retry
}

// backoff is InitialBackoff doubled per attempt, capped, with jitter in
// [d/2, d] so that synchronised clients spread out.
func (p *RetryPolicy) backoff(attempt int) time.Duration {
	d := p.InitialBackoff
	for i := 1; i < attempt && d < p.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.MaxBackoff)
	if d <= 0 {
		return 0
	}
	half := d / 2
	return half + rand.N(half+1)
}

// ParseRetryAfter reads a Retry-After value: delta-seconds or an HTTP date.
// Negative, unparsable or absent values report false.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(24*time.Hour/time.Second) {
			secs = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(secs) * time.Second, true
	}
	if at, err := http.ParseTime(v); err == nil {
		d := at.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}

// once sends one attempt. written reports whether any part of the request
// may have reached the server. It is decided only for non-idempotent
// requests, where it says whether a resend is safe, and only on positive
// evidence: a dial failure (refused, DNS, dial timeout), or a connection the
// transport obtained without writing a header to it. A custom RoundTripper
// that reports neither makes every failure count as written.
func (t *Transport) once(ctx context.Context, req *Request, extra http.Header) (resp *Response, written bool, err error) {
	written = true
	var tr *writeTrace
	if !req.Idempotent {
		tr = new(writeTrace)
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			GotConn:          func(httptrace.GotConnInfo) { tr.gotConn.Store(true) },
			WroteHeaderField: func(string, []string) { tr.wrote.Store(true) },
		})
	}
	var body io.Reader
	if req.Body != nil {
		body = bytes.NewReader(req.Body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.Method, req.URL, body)
	if err != nil {
		return nil, false, err
	}
	h := hr.Header
	if extra != nil {
		// The attempt's own headers (BeforeAttempt's, the observer's) are
		// the request's header map, which saves a map and a copy per
		// attempt; the other headers are added to it. They never name the
		// same header: the hook and the observer set none of the request's.
		hr.Header, h = extra, extra
	}
	h["Accept"] = acceptJSON
	h["User-Agent"] = t.userAgent
	if req.Body != nil || req.Method == http.MethodPost || req.Method == http.MethodPut {
		h["Content-Type"] = acceptJSON
	}
	if req.Body == nil && (req.Method == http.MethodPost || req.Method == http.MethodPut) {
		hr.Body = http.NoBody
		hr.ContentLength = 0
	}
	if req.APIKey != "" {
		h["X-Api-Key"] = t.apiKeyValue(req.APIKey)
	}
	for k, v := range req.Header {
		h[k] = v
	}
	for i, k := range req.HeaderNames {
		h[k] = req.HeaderValues[i : i+1 : i+1]
	}
	if g := req.Gate; g != nil {
		g.Begin()
		defer g.End() // after the body's Close below: deferred calls run last first
	}
	hresp, err := t.send(hr)
	if tr != nil && err != nil {
		written = !isDialError(err) && !(tr.gotConn.Load() && !tr.wrote.Load())
	}
	if err != nil {
		return nil, written, err
	}
	defer hresp.Body.Close()
	limit := int64(MaxSuccessBody)
	success := hresp.StatusCode >= 200 && hresp.StatusCode < 300
	if !success {
		limit = MaxErrorBody
	}
	b, err := readBody(hresp.Body, hresp.ContentLength, limit)
	if err != nil {
		return nil, true, fmt.Errorf("reading response body: %w", err)
	}
	r := &Response{Status: hresp.StatusCode, Header: hresp.Header, Body: b}
	if int64(len(b)) > limit {
		if success {
			// The response (without its body) goes along with the error, so
			// that the caller can still report the status and request id.
			r.Body = nil
			return r, true, fmt.Errorf("%w (%d bytes)", ErrBodyTooLarge, limit)
		}
		r.Body, r.Truncated = b[:limit], true
	}
	return r, true, nil
}

var acceptJSON = []string{"application/json"}

// send sends one request. When the http.Client adds nothing a request
// needs (no cookie jar, no timeout: ctx bounds each call; redirects are
// refused either way) it goes straight to the RoundTripper, skipping the
// Client's per-request header copy and redirect bookkeeping; errors are
// wrapped in *url.Error as Client.Do does. A URL with user info goes
// through Client.Do, which turns it into basic authentication.
func (t *Transport) send(hr *http.Request) (*http.Response, error) {
	hc := t.cfg.HTTPClient
	if hc.Jar != nil || hc.Timeout != 0 || hr.URL.User != nil {
		return hc.Do(hr)
	}
	rt := hc.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	resp, err := rt.RoundTrip(hr)
	if err != nil {
		var rec tls.RecordHeaderError
		if errors.As(err, &rec) && string(rec.RecordHeader[:]) == "HTTP/" {
			err = http.ErrSchemeMismatch
		}
		return nil, &url.Error{Op: urlOp(hr.Method), URL: hr.URL.String(), Err: err}
	}
	if resp == nil {
		return nil, &url.Error{Op: urlOp(hr.Method), URL: hr.URL.String(),
			Err: fmt.Errorf("http: RoundTripper implementation (%T) returned a nil *Response with a nil error", rt)}
	}
	if resp.Body == nil {
		resp.Body = http.NoBody
	}
	return resp, nil
}

// urlOp is the Op of Client.Do's *url.Error: "Get", "Post", ...
func urlOp(method string) string {
	switch method {
	case http.MethodGet:
		return "Get"
	case http.MethodPost:
		return "Post"
	case http.MethodPut:
		return "Put"
	case http.MethodDelete:
		return "Delete"
	case "":
		return "Get"
	}
	return method[:1] + strings.ToLower(method[1:])
}

// readBody reads at most limit+1 bytes of body. A declared length within the
// limit is read in one allocation of that size; a body that turns out longer
// than declared (possible with a custom RoundTripper) is read on, up to the
// limit.
func readBody(body io.Reader, declared, limit int64) ([]byte, error) {
	if declared < 0 || declared > limit {
		return io.ReadAll(io.LimitReader(body, limit+1))
	}
	b := make([]byte, declared, declared+1)
	if _, err := io.ReadFull(body, b); err != nil {
		return nil, err
	}
	// net/http returns io.EOF with the last bytes, so this costs one call.
	n, err := io.ReadAtLeast(body, b[declared:declared+1], 1)
	if n == 0 {
		if err == io.EOF {
			return b, nil
		}
		return nil, err
	}
	rest, err := io.ReadAll(io.LimitReader(body, limit-declared))
	return append(b[:declared+1], rest...), err
}

// writeTrace records, through httptrace, how far a request got.
type writeTrace struct {
	gotConn atomic.Bool // the transport had a connection for the request
	wrote   atomic.Bool // a header was written to it
}

// isDialError reports whether err is a failure to connect: nothing of the
// request can have been sent.
func isDialError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// discardHandler is a slog.Handler that drops everything (slog.DiscardHandler
// needs Go 1.24).
type discardHandler struct{}

func (discardHandler) Enabled(context.Context, slog.Level) bool  { return false }
func (discardHandler) Handle(context.Context, slog.Record) error { return nil }
func (d discardHandler) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discardHandler) WithGroup(string) slog.Handler           { return d }

// Discard is a logger that drops everything.
func Discard() *slog.Logger { return slog.New(discardHandler{}) }
