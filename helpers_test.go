package agenttrust

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testKey = "sk_live_TESTKEY_0123456789"

// wantUA is the User-Agent every request must carry.
var wantUA = "agenttrust-go/0.3.0 (" + runtime.GOOS + "/" + runtime.GOARCH + "; " + runtime.Version() + ")"

// recReq is one request as the server saw it.
type recReq struct {
	Method, Path, EscapedPath, RequestURI, RawQuery string
	Header                                          http.Header
	Body                                            []byte
	ContentLength                                   int64
	TransferEncoding                                []string
}

// recServer is a loopback HTTP server that records every request and answers
// with a replaceable handler.
type recServer struct {
	*httptest.Server
	prefix  string // see newScriptServer
	mu      sync.Mutex
	reqs    []recReq
	handler http.HandlerFunc
}

func newRecServer(t testing.TB, h http.HandlerFunc) *recServer {
	t.Helper()
	return startRecServer(t, "", h)
}

// protoPrefix is the base URL path prefix of a scripted server's clients.
const protoPrefix = "/prefix"

// newScriptServer returns a recording server that answers with the scripted
// replies (see script). Its clients talk to a base URL under protoPrefix: a
// request outside the prefix gets 418, and requests are recorded with the
// prefix stripped from RequestURI.
func newScriptServer(t testing.TB, replies ...scriptReply) *recServer {
	t.Helper()
	return startRecServer(t, protoPrefix, script(replies...))
}

func startRecServer(t testing.TB, prefix string, h http.HandlerFunc) *recServer {
	t.Helper()
	s := &recServer{handler: h, prefix: prefix}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, recReq{
			Method: r.Method, Path: r.URL.Path, EscapedPath: r.URL.EscapedPath(),
			RequestURI: strings.TrimPrefix(r.RequestURI, prefix), RawQuery: r.URL.RawQuery, Header: r.Header.Clone(),
			Body: body, ContentLength: r.ContentLength, TransferEncoding: r.TransferEncoding,
		})
		h := s.handler
		s.mu.Unlock()
		if prefix != "" && !strings.HasPrefix(r.RequestURI, prefix+"/") {
			http.Error(w, "request outside the base URL prefix: "+r.RequestURI, http.StatusTeapot)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if h == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// scriptReply is one scripted answer; status 0 means 200.
type scriptReply struct {
	status int
	body   string
	header map[string]string
}

// script answers with the replies in order, the last one repeating; with
// none, every answer is 200 with the body "{}".
func script(replies ...scriptReply) http.HandlerFunc {
	var mu sync.Mutex
	n := 0
	return func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		rep := scriptReply{status: 200, body: "{}"}
		if len(replies) > 0 {
			rep = replies[min(n, len(replies)-1)]
		}
		n++
		mu.Unlock()
		for k, v := range rep.header {
			w.Header().Set(k, v)
		}
		if rep.status == 0 {
			rep.status = 200
		}
		w.WriteHeader(rep.status)
		_, _ = io.WriteString(w, rep.body)
	}
}

// reset forgets the recorded requests and answers from now on with the
// scripted replies.
func (s *recServer) reset(replies ...scriptReply) {
	s.clear()
	s.setHandler(script(replies...))
}

// client returns a test client for s (under its prefix, if any) with no
// retries unless opts say otherwise.
func (s *recServer) client(t testing.TB, opts ...Option) *Client {
	t.Helper()
	return newTestClient(t, s.URL+s.prefix, append([]Option{WithRetryPolicy(RetryPolicy{})}, opts...)...)
}

func (s *recServer) setHandler(h http.HandlerFunc) {
	s.mu.Lock()
	s.handler = h
	s.mu.Unlock()
}

func (s *recServer) requests() []recReq {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recReq(nil), s.reqs...)
}

func (s *recServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

func (s *recServer) clear() {
	s.mu.Lock()
	s.reqs = nil
	s.mu.Unlock()
}

// only returns the single request the server received, failing otherwise.
func (s *recServer) only(t testing.TB) recReq {
	t.Helper()
	r := s.requests()
	require.Len(t, r, 1, "server got %d requests, want 1", len(r))
	return r[0]
}

// reply answers every request with status and a JSON body.
func reply(status int, body string) http.HandlerFunc {
	return replyH(status, body, nil)
}

func replyH(status int, body string, hdr map[string]string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for k, v := range hdr {
			w.Header().Set(k, v)
		}
		if body != "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// sleepRecorder is an injectable retry sleep that returns at once and
// records the delays it was asked for.
type sleepRecorder struct {
	mu     sync.Mutex
	delays []time.Duration
}

func (s *sleepRecorder) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.delays = append(s.delays, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleepRecorder) got() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.delays...)
}

// withSleep replaces the retry sleep (tests only).
func withSleep(f func(context.Context, time.Duration) error) Option {
	return func(c *config) error { c.sleep = f; return nil }
}

// withNow replaces the token cache clock (tests only).
func withNow(f func() time.Time) Option {
	return func(c *config) error { c.now = f; return nil }
}

// fakeClock is a settable clock for the token cache.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newTestClient returns a client for base with the test API key and an
// instant retry sleep; opts come last and win.
func newTestClient(t testing.TB, base string, opts ...Option) *Client {
	t.Helper()
	all := append([]Option{WithBaseURL(base), WithAPIKey(testKey), withSleep((&sleepRecorder{}).sleep)}, opts...)
	c, err := New(all...)
	require.NoError(t, err, "New")
	return c
}

// decodeMap decodes a JSON object body into map[string]any, by wire names.
func decodeMap(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	require.NoError(t, d.Decode(&m), "body %q is not a JSON object", b)
	require.NotNil(t, m, "body %q is null", b)
	return m
}

// keyOrder returns the top-level keys of a JSON object in wire order.
func keyOrder(t testing.TB, b []byte) []string {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	tok, err := d.Token()
	require.NoError(t, err, "body %q is not an object", b)
	require.Equal(t, json.Delim('{'), tok, "body %q is not an object", b)
	var keys []string
	for d.More() {
		tok, err := d.Token()
		require.NoError(t, err)
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		require.NoError(t, d.Decode(&skip))
	}
	return keys
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// split is the direct-services layout: three servers, the gateway under a
// path prefix (given with a trailing slash, which must be stripped).
type split struct {
	gw, auth, audit *recServer
	c               *Client
}

func newSplit(t testing.TB, opts ...Option) *split {
	t.Helper()
	s := &split{
		gw:    newRecServer(t, nil),
		auth:  newRecServer(t, nil),
		audit: newRecServer(t, nil),
	}
	all := append([]Option{WithAuthURL(s.auth.URL + "/"), WithAuditURL(s.audit.URL + "/aud")}, opts...)
	s.c = newTestClient(t, s.gw.URL+"/gw//", all...)
	return s
}

// which returns the name of the one server that got requests, and its requests.
func (s *split) which(t testing.TB) (string, []recReq) {
	t.Helper()
	var name string
	var reqs []recReq
	for n, srv := range map[string]*recServer{"gateway": s.gw, "auth": s.auth, "audit": s.audit} {
		if r := srv.requests(); len(r) > 0 {
			require.Empty(t, name, "requests reached both %s and %s", name, n)
			name, reqs = n, r
		}
	}
	return name, reqs
}

func (s *split) clear() { s.gw.clear(); s.auth.clear(); s.audit.clear() }

// checkHeaders asserts the headers every request carries.
func checkHeaders(t testing.TB, r recReq, key string) {
	t.Helper()
	assert.Equal(t, key, r.Header.Get("X-Api-Key"), "X-API-Key")
	if key == "" {
		assert.NotContains(t, r.Header, "X-Api-Key", "X-API-Key sent without a key")
	}
	assert.Equal(t, wantUA, r.Header.Get("User-Agent"), "User-Agent")
	assert.Equal(t, "application/json", r.Header.Get("Accept"), "Accept")
	assert.Empty(t, r.TransferEncoding, "Transfer-Encoding, want a Content-Length")
	switch r.Method {
	case http.MethodPost, http.MethodPut:
		assert.Equal(t, "application/json", r.Header.Get("Content-Type"), "%s without Content-Type application/json", r.Method)
		assert.Equal(t, int64(len(r.Body)), r.ContentLength, "Content-Length for a %d-byte body", len(r.Body))
		if len(r.Body) == 0 {
			assert.Equal(t, "0", r.Header.Get("Content-Length"), "bodiless %s: Content-Length header", r.Method)
		}
	default:
		assert.Empty(t, r.Header.Get("Content-Type"), "%s with a Content-Type", r.Method)
		assert.Empty(t, r.Body, "%s with a body", r.Method)
		assert.Empty(t, r.Header.Get("Content-Length"), "%s with a Content-Length", r.Method)
	}
}

// bodyMap decodes the request body into a map keyed by wire names, with
// numbers as float64.
func (r recReq) bodyMap(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &m), "request body %q is not a JSON object", r.Body)
	require.NotNil(t, m, "request body is null")
	return m
}

// checkBodiless checks a bodiless POST or PUT: no body bytes,
// Content-Length 0, Content-Type still sent.
func checkBodiless(t testing.TB, r recReq, method string) {
	t.Helper()
	assert.Equal(t, method, r.Method)
	assert.Empty(t, r.Body, "bodiless %s sent a body", method)
	assert.Equal(t, "0", r.Header.Get("Content-Length"))
	checkHeaders(t, r, testKey)
}

// checkRequest checks method and path (escapes intact, prefix stripped) and
// the headers every request carries.
func checkRequest(t testing.TB, r recReq, method, uri string) {
	t.Helper()
	assert.Equal(t, method, r.Method, "method of %s", uri)
	assert.Equal(t, uri, r.RequestURI, "request URI of %s", method)
	checkHeaders(t, r, testKey)
}

// checkBody compares the JSON body with want by wire names: every key of
// want with an equal value and no other key.
func checkBody(t testing.TB, r recReq, want map[string]any) {
	t.Helper()
	w, err := json.Marshal(want)
	require.NoError(t, err)
	assert.JSONEq(t, string(w), string(r.Body))
}

// wantCode checks that err is an *AgentTrustError with the code that also
// matches ErrAgentTrust, and returns it.
func wantCode(t testing.TB, err error, code string) *AgentTrustError {
	t.Helper()
	var e *AgentTrustError
	require.ErrorAs(t, err, &e)
	require.Equal(t, code, e.Code, "error %v", err)
	assert.ErrorIs(t, err, ErrAgentTrust)
	return e
}

// fakeClient returns a client for the fake gateway srv (every listener of a
// split layout) with short retries; opts come last and win.
func fakeClient(t testing.TB, srv *agenttrusttest.Server, opts ...Option) *Client {
	t.Helper()
	all := append([]Option{
		WithBaseURL(srv.URL()), WithAuthURL(srv.AuthURL()), WithAuditURL(srv.AuditURL()),
		WithAPIKey(srv.APIKey()),
		WithRetryPolicy(RetryPolicy{MaxRetries: 2, InitialBackoff: time.Millisecond,
			MaxBackoff: 5 * time.Millisecond, MaxRetryAfter: 10 * time.Millisecond}),
	}, opts...)
	c, err := New(all...)
	require.NoError(t, err)
	return c
}

// newE2E starts a fake gateway and returns it with a client that does not retry.
func newE2E(t testing.TB, opts ...Option) (*agenttrusttest.Server, *Client) {
	t.Helper()
	srv := agenttrusttest.NewTestServer(t)
	return srv, fakeClient(t, srv, append([]Option{WithRetryPolicy(RetryPolicy{})}, opts...)...)
}

// wantValidation checks that err is a *ValidationError, raised before any
// I/O (status 0), that matches ErrValidation and ErrAgentTrust.
func wantValidation(t testing.TB, err error, msgAndArgs ...any) {
	t.Helper()
	var ve *ValidationError
	require.ErrorAs(t, err, &ve, msgAndArgs...)
	require.Equal(t, 0, ve.Status, msgAndArgs...)
	require.Equal(t, CodeValidation, ve.Code, msgAndArgs...)
	require.ErrorIs(t, err, ErrValidation, msgAndArgs...)
	require.ErrorIs(t, err, ErrAgentTrust, msgAndArgs...)
}

// wantDecode checks that err is a *DecodeError matching ErrDecode and
// ErrAgentTrust, with the standard message prefix.
func wantDecode(t testing.TB, err error) {
	t.Helper()
	var de *DecodeError
	require.ErrorAs(t, err, &de, "err = %v (%T), want a DECODE_ERROR", err, err)
	require.Equal(t, CodeDecode, de.Code, "err = %v (%T), want a DECODE_ERROR", err, err)
	require.ErrorIs(t, err, ErrDecode, "err = %v (%T), want a DECODE_ERROR", err, err)
	require.ErrorIs(t, err, ErrAgentTrust, "err = %v (%T), want a DECODE_ERROR", err, err)
	assert.True(t, strings.HasPrefix(de.Message, "Decode error: "), "message %q", de.Message)
}

// wantNetwork checks that err is a *NetworkError (status 0, CodeNetwork)
// that matches ErrNetwork and no other sentinel, and returns it.
func wantNetwork(t testing.TB, err error) *NetworkError {
	t.Helper()
	var ne *NetworkError
	require.ErrorAs(t, err, &ne, "err = %v (%T), want *NetworkError", err, err)
	assert.Equal(t, 0, ne.Status, "network error fields: %d %q %q", ne.Status, ne.Code, ne.Message)
	assert.Equal(t, CodeNetwork, ne.Code, "network error fields: %d %q %q", ne.Status, ne.Code, ne.Message)
	assert.True(t, strings.HasPrefix(ne.Message, "Network error: "), "network error fields: %d %q %q", ne.Status, ne.Code, ne.Message)
	onlySentinel(t, err, ErrNetwork)
	return ne
}

// closedURL returns the URL of a loopback port that refuses connections.
func closedURL(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	u := "http://" + l.Addr().String()
	l.Close()
	return u
}

// releaser returns a function that closes ch once, and also has it called
// when the test ends: a test that fails while handlers wait on ch must not
// leave them blocked, or the server's Close waits for them forever. Call it
// after starting the server, so that it runs before the server's Close.
func releaser(t testing.TB, ch chan struct{}) (release func()) {
	var once sync.Once
	release = func() { once.Do(func() { close(ch) }) }
	t.Cleanup(release)
	return release
}

// meanAllocs is testing.AllocsPerRun without the rounding: the mean number
// of heap allocations of f over runs calls, after one warm-up call, with
// GOMAXPROCS 1 as AllocsPerRun has it. The garbage collector is off while
// it counts, so that no collection empties the sync.Pools (net/http's
// buffers among them) in some counts and not in others. Under -race the
// pools still drop a random share of what is put in them (the race
// detector's way of finding misuse), which adds a few tenths of an
// allocation per call, a little more or less each count.
func meanAllocs(runs int, f func()) float64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	runtime.GC()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	f()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < runs; i++ {
		f()
	}
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs) / float64(runs)
}
