package agenttrust

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/agenttrustid/agenttrust-go/internal/transport"
)

type baseKind uint8

const (
	baseGateway baseKind = iota
	baseAuth
	baseAudit
)

// request is one API call as the services describe it.
type request struct {
	method string
	base   baseKind
	path   string      // escaped, from buildPath
	query  url.Values  // optional
	body   any         // nil: no body
	header http.Header // per-request headers; may be nil
	// idempotent marks calls that are safe to repeat.
	idempotent bool
	// secrets are request values (tokens) that must never appear in an error.
	secrets []string
	// attempt, when set, adds per-attempt headers for the URL being sent
	// (agent credentials); its error is returned as is, nothing sent.
	attempt attemptHook

	// rawBody, when set, is the body already encoded as JSON; body is then
	// ignored.
	rawBody []byte
	// observer watches the attempts; set by Client.do when observed.
	observer transport.AttemptObserver
}

// attemptHook adds a call's per-attempt headers. It is not a closure over
// the request, so that requests can stay off the heap.
type attemptHook interface {
	// BeforeAttempt adds the headers of one attempt to h.
	transport.AttemptHook
	// target sets the method and the URL the attempts are sent to.
	target(method, url string)
	// secrets are the values the attempts sent that errors must not show.
	secrets() []string
}

// response is a 2xx answer.
type response struct {
	status    int
	header    http.Header
	body      []byte
	requestID string
	// key and secrets are the request's, for errors built from a 2xx body
	// (JSON-RPC errors) to be redacted like the others.
	key     string
	secrets []string
}

// send sends r and maps every failure to an SDK error: transport failures to
// NETWORK_ERROR, non-2xx statuses to their error kinds, oversized bodies to
// DECODE_ERROR. The client timeout bounds the call, retries included. opts
// are the caller's request options, applied here alone. They are not a
// field of r so that the variadic slice a caller writes stays on its stack:
// what a request holds (body, secrets) reaches the heap.
func (c *Client) send(ctx context.Context, r *request, opts []RequestOption) (*response, error) {
	if ctx == nil {
		return nil, errNilContext()
	}
	key := *c.apiKey.Load()
	if err := checkHeaderValues(key, r.header); err != nil {
		return nil, err
	}
	body := r.rawBody
	if body == nil && r.body != nil {
		var err error
		if body, err = encodeJSON(r.body); err != nil {
			return nil, validationErr("encoding request body: " + err.Error())
		}
	}
	ep := &c.endpoints[r.base]
	u := ep.url + r.path
	header := r.header
	if ep.authorization != "" {
		if header.Get("Authorization") == "" {
			header = make(http.Header, len(r.header)+1)
			for k, v := range r.header {
				header[k] = v
			}
			header["Authorization"] = []string{ep.authorization}
		}
	}
	co := callOptions{timeout: c.timeout}
	if len(opts) > 0 {
		if err := co.apply(c, opts, r.header); err != nil {
			return nil, err
		}
	}
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	// The call's timeout bounds it; a caller whose deadline is already
	// earlier (the guard's check timeout, say) needs no second timer.
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > co.timeout {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, co.timeout)
		defer cancel()
	}
	treq := &transport.Request{
		Method:        r.method,
		URL:           u,
		Body:          body,
		Header:        header,
		APIKey:        key,
		Idempotent:    r.idempotent,
		UntilDeadline: co.untilDeadline,
		Retry:         co.retry,
		HeaderNames:   co.names,
		HeaderValues:  co.values,
		Observer:      r.observer,
		Gate:          ep.gate,
	}
	if r.attempt != nil {
		r.attempt.target(r.method, u)
		treq.BeforeAttempt = r.attempt
	}
	resp, err := c.tr.Do(ctx, treq)
	secrets := r.secrets
	if r.attempt != nil {
		// Read after the call: the hook adds the secrets of each attempt
		// (the agent credentials' token and proofs). Its slice is used as
		// is when the request has none of its own (a check): later
		// appends below never write into it.
		if len(secrets) == 0 {
			secrets = r.attempt.secrets()
		} else {
			secrets = append(secrets[:len(secrets):len(secrets)], r.attempt.secrets()...)
		}
	}
	if ep.authorization != "" {
		secrets = append(secrets[:len(secrets):len(secrets)], ep.user, ep.password)
	}
	if len(co.values) > 0 { // a header option may carry a token
		if len(secrets) == 0 {
			secrets = co.values
		} else {
			secrets = append(secrets[:len(secrets):len(secrets)], co.values...)
		}
	}
	if c.closed.Load() {
		// The call's connection went back to the pool when its body was
		// read; after Close (even one made while the call was in flight),
		// nothing may stay there.
		c.closeIdle()
	}
	if err != nil {
		var he *transport.HookError
		if errors.As(err, &he) {
			// An SDK error already (credentials), possibly shared by
			// concurrent callers: returned unchanged.
			return nil, he.Err
		}
		if errors.Is(err, transport.ErrBodyTooLarge) && resp != nil {
			// Not a network failure: the response arrived but is too large
			// to decode. Keep its status and request id.
			return nil, decodeErr(&response{status: resp.Status, header: resp.Header,
				requestID: redactString(resp.Header.Get("X-Request-Id"), key, secrets)}, err)
		}
		return nil, redact(networkErr(err), key, secrets)
	}
	// A proxy may echo the key in the request id: redacted like the message,
	// here, so that decode errors built later carry the redacted one too.
	rid := redactString(resp.Header.Get("X-Request-Id"), key, secrets)
	if resp.Status < 200 || resp.Status > 299 {
		return nil, redact(statusError(resp, rid), key, secrets)
	}
	if co.into != nil {
		*co.into = Response{StatusCode: resp.Status, Header: resp.Header, RequestID: rid, Attempts: resp.Attempts}
	}
	return &response{status: resp.Status, header: resp.Header, body: resp.Body, requestID: rid, key: key, secrets: secrets}, nil
}

// callOptions is what a call's RequestOptions ask for, validated.
type callOptions struct {
	timeout       time.Duration
	retry         *transport.RetryPolicy // nil: the client's
	untilDeadline bool
	into          *Response
	names, values []string // the header options, each name once
}

// apply validates opts, in order, into co; own is the header the call set
// itself. Nothing has been sent yet, so every error is a validation error.
func (co *callOptions) apply(c *Client, opts []RequestOption, own http.Header) error {
	n := 0
	for i := range opts {
		if opts[i].kind == optHeader {
			n++
		}
	}
	if n > 0 {
		// One allocation holds every name and value; the values are sent
		// from it and redacted from errors as secrets.
		buf := make([]string, 2*n)
		co.values, co.names = buf[:0:n], buf[n:n]
	}
	for i := range opts {
		o := &opts[i]
		switch o.kind {
		case optNone:
		case optHeader:
			name, err := checkOptionHeader(o.name, o.value, own)
			if err != nil {
				return err
			}
			if j := indexOf(co.names, name); j >= 0 {
				co.values[j] = o.value
			} else {
				co.names = append(co.names, name)
				co.values = append(co.values, o.value)
			}
		case optTimeout:
			if o.d <= 0 {
				return validationErr("WithRequestTimeout: timeout must be positive, got " + o.d.String())
			}
			co.timeout = o.d
		case optRetryPolicy:
			p := o.policy
			if p.MaxRetries < 0 || p.InitialBackoff < 0 || p.MaxBackoff < 0 || p.MaxRetryAfter < 0 {
				return validationErr("WithRequestRetryPolicy: negative value")
			}
			co.retry = (*transport.RetryPolicy)(&p)
		case optMaxRetries:
			if o.policy.MaxRetries < 0 {
				return validationErr("WithRequestMaxRetries: negative count " + strconv.Itoa(o.policy.MaxRetries))
			}
			if co.retry == nil {
				p := c.tr.RetryPolicy()
				co.retry = &p
			}
			co.retry.MaxRetries = o.policy.MaxRetries
		case optUntilDeadline:
			co.untilDeadline = true
		case optResponseInto:
			if o.into == nil {
				return validationErr("WithResponseInto: nil *Response")
			}
			co.into = o.into
		default:
			return validationErr("invalid RequestOption")
		}
	}
	return nil
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// checkOptionHeader validates a WithRequestHeader and returns its canonical
// name. The value is never quoted: it may be a secret.
func checkOptionHeader(name, value string, own http.Header) (string, error) {
	if !validHeaderName(name) {
		return "", validationErr("WithRequestHeader: invalid header name " + strconv.Quote(name))
	}
	name = http.CanonicalHeaderKey(name)
	switch name {
	case "X-Api-Key", "Authorization", "Dpop", "Accept", "Content-Type", "Content-Length",
		"Content-Encoding", "User-Agent", "Host", "Connection", "Keep-Alive", "Proxy-Authorization",
		"Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return "", validationErr("WithRequestHeader: " + name + " is set by the SDK and cannot be replaced")
	}
	if _, ok := own[name]; ok {
		return "", validationErr("WithRequestHeader: " + name + " is set by this call and cannot be replaced")
	}
	if !validHeaderValue(value) {
		return "", validationErr("WithRequestHeader: invalid " + name + " header value: it contains a control character (such as CR or LF)")
	}
	return name, nil
}

// validHeaderName reports whether name is an HTTP token (RFC 9110), which
// net/http requires of a header name.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		b := name[i]
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0:
		default:
			return false
		}
	}
	return true
}

// checkHeaderValues validates the header values of a request before any I/O:
// net/http refuses a value with a control character (CR and LF included),
// and that refusal would otherwise come back as a NETWORK_ERROR, the class
// that means "gateway unavailable". Values are never quoted in the error,
// since one may be a secret.
func checkHeaderValues(apiKey string, h http.Header) error {
	if !validHeaderValue(apiKey) {
		return validationErr(errAPIKeyBytes)
	}
	for name, vs := range h {
		for _, v := range vs {
			if !validHeaderValue(v) {
				return validationErr("invalid " + name + " header value: it contains a control character (such as CR or LF)")
			}
		}
	}
	return nil
}

const errAPIKeyBytes = "invalid API key: it contains a control character (such as CR or LF)"

// validHeaderValue reports whether net/http sends v as a header value: no
// control characters other than horizontal tab, and no DEL.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if b := v[i]; (b < ' ' && b != '\t') || b == 0x7f {
			return false
		}
	}
	return true
}

// errNilContext is the validation error of a call given a nil ctx.
func errNilContext() error { return validationErr("nil context") }

// redact removes the API key and other secrets (request tokens, URL user
// info) from an error's message and details, in case a server or a proxy
// echoed them.
func redact(err error, key string, secrets []string) error {
	var e *AgentTrustError
	if !errors.As(err, &e) {
		return err
	}
	e.Message = redactString(e.Message, key, secrets)
	for k, v := range e.Details {
		e.Details[k] = redactValue(v, key, secrets)
	}
	return err
}

// redactString replaces the key and each secret in s; the key is passed
// apart so that a successful call builds no slice.
func redactString(s, key string, secrets []string) string {
	s = redactOne(s, key)
	for _, sec := range secrets {
		s = redactOne(s, sec)
	}
	return s
}

func redactOne(s, secret string) string {
	if len(secret) >= 4 && strings.Contains(s, secret) {
		s = strings.ReplaceAll(s, secret, "[redacted]")
	}
	return s
}

// redactValue redacts the strings of a decoded JSON value, in place for
// objects and arrays.
func redactValue(v any, key string, secrets []string) any {
	switch v := v.(type) {
	case string:
		return redactString(v, key, secrets)
	case map[string]any:
		for k, x := range v {
			v[k] = redactValue(x, key, secrets)
		}
	case []any:
		for i, x := range v {
			v[i] = redactValue(x, key, secrets)
		}
	}
	return v
}

// statusError maps a non-2xx response.
func statusError(resp *transport.Response, requestID string) error {
	e := &AgentTrustError{Status: resp.Status, Body: resp.Body, RequestID: requestID}
	switch resp.Status {
	case http.StatusBadRequest:
		e.Code, e.Message = CodeValidation, "Validation failed"
	case http.StatusUnauthorized:
		e.Code, e.Message = CodeAuthFailed, "Authentication failed"
	case http.StatusForbidden:
		e.Code, e.Message = CodeAuthDenied, "Authorization denied"
	case http.StatusNotFound:
		e.Code, e.Message = CodeNotFound, "Resource not found"
	default:
		e.Code = "HTTP_" + strconv.Itoa(resp.Status)
		e.Message = "HTTP " + strconv.Itoa(resp.Status) + " error"
	}
	if resp.Status == http.StatusTooManyRequests {
		e.RetryAfter, _ = transport.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	if msg, details := errorMessage(resp.Body); msg != "" {
		e.Message, e.Details = msg, details
	} else {
		e.Details = details
	}
	if e.Details == nil {
		e.Details = map[string]any{}
	}
	return wrapKind(e)
}

// errorMessage picks the message of an error body ("message", then
// "error" as a string or an object with a "message", and so on) and returns
// the decoded body as the error's details.
func errorMessage(body []byte) (string, map[string]any) {
	text := strings.TrimSpace(string(body))
	if text == "" {
		return "", nil
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return text, map[string]any{"message": string(body)}
	}
	switch v := v.(type) {
	case map[string]any:
		if s, ok := v["message"].(string); ok && s != "" {
			return s, v
		}
		switch e := v["error"].(type) {
		case string:
			if e != "" {
				return e, v
			}
		case map[string]any:
			if s, ok := e["message"].(string); ok && s != "" {
				return s, v
			}
		}
		return "", v
	case string:
		return v, nil
	}
	return "", nil
}

// encodeJSON encodes v compactly without HTML escaping and
// without the encoder's trailing newline.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return b[:len(b)-1], nil
}

// buildPath fills the {name} placeholders of tmpl with args, each escaped as
// one path segment. An empty argument, "." or ".." is a
// validation error naming the parameter, returned before any I/O.
func buildPath(tmpl string, args ...string) (string, error) {
	var b strings.Builder
	b.Grow(len(tmpl) + 32)
	i := 0
	for {
		open := strings.IndexByte(tmpl, '{')
		if open < 0 {
			b.WriteString(tmpl)
			break
		}
		end := strings.IndexByte(tmpl[open:], '}') + open
		name := tmpl[open+1 : end]
		if i >= len(args) {
			panic("agenttrust: buildPath: too few arguments for " + tmpl) // programming error in the SDK
		}
		v := args[i]
		i++
		switch v {
		case "":
			return "", validationErr("missing required " + name)
		case ".", "..":
			return "", validationErr("invalid " + name + " " + strconv.Quote(v) + ": a dot segment")
		}
		b.WriteString(tmpl[:open])
		b.WriteString(url.PathEscape(v))
		tmpl = tmpl[end+1:]
	}
	return b.String(), nil
}
