package agenttrust_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	"github.com/agenttrustid/agenttrust-go/tokenauth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// toolRig is an agent and a tool provider protected by RequireToken, both on
// the fake gateway, with an HTTP client presenting the agent's tokens.
type toolRig struct {
	gw      *agenttrusttest.Server
	client  *agenttrust.Client
	agentID string
	src     *agenttrust.TokenSource
	tool    *httptest.Server
	http    *http.Client
	// seen records the Authorization header of each request the tool got.
	mu   sync.Mutex
	seen []string
}

func newToolRig(t *testing.T) *toolRig {
	t.Helper()
	r := &toolRig{gw: agenttrusttest.NewTestServer(t)}
	var err error
	r.client, err = agenttrust.New(agenttrust.WithBaseURL(r.gw.URL()), agenttrust.WithAuthURL(r.gw.AuthURL()),
		agenttrust.WithAPIKey(r.gw.APIKey()), agenttrust.WithRetryPolicy(agenttrust.RetryPolicy{}))
	require.NoError(t, err)
	t.Cleanup(func() { r.client.Close() })
	r.agentID = r.gw.CreateAgent("reader", "files:read")
	tool := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		res, _ := tokenauth.FromContext(req.Context())
		fmt.Fprintf(w, "hello %s", res.AgentID)
	})
	protected := tokenauth.RequireToken(r.client, tokenauth.WithRequiredScopes("files:read"), tokenauth.WithCache(0))(tool)
	r.tool = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.seen = append(r.seen, req.Header.Get("Authorization"))
		r.mu.Unlock()
		protected.ServeHTTP(w, req)
	}))
	t.Cleanup(r.tool.Close)
	r.src, err = r.client.Tokens.NewSource(agenttrust.TokenIssueParams{AgentID: r.agentID, Scopes: []string{"files:read"}, Target: "files"})
	require.NoError(t, err)
	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	r.http = &http.Client{Transport: r.src.Transport(base)}
	return r
}

func (r *toolRig) get(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := r.http.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (r *toolRig) issued() int {
	n := 0
	for _, rec := range r.gw.Requests() {
		if rec.Path == "/api/v1/agent-tokens/issue" {
			n++
		}
	}
	return n
}

// The agent's requests carry its cached token, which the tool provider
// accepts by introspection; one token serves every request, and the
// caller's request is left as it was.
func TestTokenTransportPresentsCachedToken(t *testing.T) {
	r := newToolRig(t)
	for i := 0; i < 3; i++ {
		req, _ := http.NewRequest(http.MethodGet, r.tool.URL+"/files", nil)
		req.Header.Set("Authorization", "Basic c29tZW9uZTplbHNl") // replaced, in the copy only
		req.Header["X-Nil"] = nil
		code, body := r.get(t, req)
		require.Equal(t, http.StatusOK, code, "request %d: %d %q", i, code, body)
		require.Equal(t, "hello "+r.agentID, body, "request %d: %d %q", i, code, body)
		got := req.Header.Get("Authorization")
		require.Equal(t, "Basic c29tZW9uZTplbHNl", got, "the caller's request was modified: %v", req.Header)
		require.Len(t, req.Header, 2, "the caller's request was modified: %v", req.Header)
	}
	n := r.issued()
	assert.Equal(t, 1, n, "%d tokens issued for 3 requests, want 1", n)
	tok, err := r.src.Token(context.Background())
	require.NoError(t, err)
	for i, s := range r.seen {
		assert.Equal(t, "Bearer "+tok, s, "request %d carried %q", i, s)
	}
	// The source shares the cache of Tokens.Issue.
	same, err := r.client.Tokens.Issue(context.Background(), agenttrust.TokenIssueParams{AgentID: r.agentID, Scopes: []string{"files:read"}, Target: "files"})
	require.NoError(t, err, "Tokens.Issue with the same params: %v, %d issued", err, r.issued())
	assert.Equal(t, tok, same.Token, "Tokens.Issue with the same params: %v, %d issued", err, r.issued())
	assert.Equal(t, 1, r.issued(), "Tokens.Issue with the same params: %v, %d issued", err, r.issued())
}

// A token revoked behind the client's back is answered 401 once; the
// transport drops it, and the next request presents a new one.
func TestTokenTransportDropsRejectedToken(t *testing.T) {
	r := newToolRig(t)
	get := func() int {
		req, _ := http.NewRequest(http.MethodGet, r.tool.URL, nil)
		code, _ := r.get(t, req)
		return code
	}
	c := get()
	require.Equal(t, http.StatusOK, c, "status %d", c)
	old, _ := r.src.Token(context.Background())
	other, err := agenttrust.New(agenttrust.WithBaseURL(r.gw.URL()), agenttrust.WithAuthURL(r.gw.AuthURL()), agenttrust.WithAPIKey(r.gw.APIKey()))
	require.NoError(t, err)
	defer other.Close()
	require.NoError(t, other.Tokens.Revoke(context.Background(), old, ""))
	c = get()
	require.Equal(t, http.StatusUnauthorized, c, "revoked token: status %d, want 401", c)
	c = get()
	require.Equal(t, http.StatusOK, c, "after the 401: status %d, want 200 with a new token", c)
	now, _ := r.src.Token(context.Background())
	assert.NotEqual(t, old, now, "token not replaced (%d issued)", r.issued())
	assert.Equal(t, 2, r.issued(), "token not replaced (%d issued)", r.issued())
}

// A redirect to the same host keeps the token; one to another host is
// followed without it.
func TestTokenTransportRedirects(t *testing.T) {
	r := newToolRig(t)
	var elsewhere atomic.Value
	elsewhere.Store("unset")
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		elsewhere.Store(req.Header.Get("Authorization"))
	}))
	defer other.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, other.URL, http.StatusFound)
	}))
	defer redirector.Close()

	req, _ := http.NewRequest(http.MethodGet, redirector.URL, nil)
	code, _ := r.get(t, req)
	require.Equal(t, http.StatusOK, code, "status %d", code)
	got := elsewhere.Load().(string)
	require.Empty(t, got, "another host received Authorization %q", got)

	// Same host: the tool redirects to itself.
	mux := http.NewServeMux()
	mux.Handle("/old", http.RedirectHandler("/new", http.StatusFound))
	mux.HandleFunc("/new", func(w http.ResponseWriter, req *http.Request) {
		io.WriteString(w, req.Header.Get("Authorization"))
	})
	self := httptest.NewServer(mux)
	defer self.Close()
	req, _ = http.NewRequest(http.MethodGet, self.URL+"/old", nil)
	tok, _ := r.src.Token(context.Background())
	code, body := r.get(t, req)
	require.Equal(t, http.StatusOK, code, "same-host redirect: %d, token kept: %v", code, body == "Bearer "+tok)
	require.Equal(t, "Bearer "+tok, body, "same-host redirect: %d, token kept: %v", code, body == "Bearer "+tok)
}

type closeRecorder struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeRecorder) Close() error { c.closed.Store(true); return nil }

// When no token can be had, nothing is sent, the body is closed and the
// SDK's typed error reaches the caller through http.Client.
func TestTokenTransportGatewayDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refused := "http://" + l.Addr().String()
	l.Close()
	client, err := agenttrust.New(agenttrust.WithBaseURL(refused), agenttrust.WithAuthURL(refused),
		agenttrust.WithRetryPolicy(agenttrust.RetryPolicy{}), agenttrust.WithAPIKey("ak_test"))
	require.NoError(t, err)
	defer client.Close()
	var hits atomic.Int32
	tool := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer tool.Close()
	src, err := client.Tokens.NewSource(agenttrust.TokenIssueParams{AgentID: "a1"})
	require.NoError(t, err)
	body := &closeRecorder{Reader: strings.NewReader("payload")}
	req, _ := http.NewRequest(http.MethodPost, tool.URL, body)
	_, err = (&http.Client{Transport: src.Transport(nil)}).Do(req)
	require.ErrorIs(t, err, agenttrust.ErrNetwork, "got %v, want a network error", err)
	var ate *agenttrust.AgentTrustError
	assert.ErrorAs(t, err, &ate, "%T is not an *AgentTrustError", err)
	assert.True(t, body.closed.Load(), "body closed %v, tool hits %d; want true and 0", body.closed.Load(), hits.Load())
	assert.EqualValues(t, 0, hits.Load(), "body closed %v, tool hits %d; want true and 0", body.closed.Load(), hits.Load())
}

// Concurrent first requests share one issue request; a caller whose
// context ends while waiting returns at once with a network error.
func TestTokenSourceConcurrentAndCancelled(t *testing.T) {
	r := newToolRig(t)
	r.gw.InjectFault("POST /api/v1/agent-tokens/issue", agenttrusttest.Fault{Latency: 300 * time.Millisecond, Times: 1})
	const n = 20
	var wg sync.WaitGroup
	toks := make([]string, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) { defer wg.Done(); toks[i], errs[i] = r.src.Token(context.Background()) }(i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := r.src.Token(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "cancelled caller: %v", err)
	assert.ErrorIs(t, err, agenttrust.ErrNetwork, "cancelled caller: %v", err)
	d := time.Since(start)
	assert.LessOrEqual(t, d, 250*time.Millisecond, "the cancelled caller waited %v", d)
	wg.Wait()
	for i := range toks {
		require.NoError(t, errs[i], "caller %d", i)
		require.Equal(t, toks[0], toks[i], "caller %d: %v", i, errs[i])
		require.True(t, strings.HasPrefix(toks[i], "at_"), "caller %d: %v", i, errs[i])
	}
	assert.Equal(t, 1, r.issued(), "%d issue requests, want 1", r.issued())
}

func TestTokenSourceValidation(t *testing.T) {
	c, err := agenttrust.New(agenttrust.WithBaseURL("http://127.0.0.1:1"))
	require.NoError(t, err)
	defer c.Close()
	for name, p := range map[string]agenttrust.TokenIssueParams{
		"no agent": {Scopes: []string{"s"}},
		"no cache": {AgentID: "a", NoCache: true},
	} {
		_, err := c.Tokens.NewSource(p)
		assert.ErrorIs(t, err, agenttrust.ErrValidation, "%s: %v", name, err)
	}
	src, err := c.Tokens.NewSource(agenttrust.TokenIssueParams{AgentID: "a"})
	require.NoError(t, err)
	//lint:ignore SA1012 a nil context is the input under test
	_, err = src.Token(nil) //nolint:staticcheck
	assert.ErrorIs(t, err, agenttrust.ErrValidation, "nil ctx")
}

// Neither the source nor its transport shows a token under any verb or in
// a log record, once a token is cached.
func TestTokenSourceNeverPrintsToken(t *testing.T) {
	r := newToolRig(t)
	tok, err := r.src.Token(context.Background())
	require.NoError(t, err)
	tr := r.http.Transport
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		for name, v := range map[string]any{"source": r.src, "transport": tr} {
			s := fmt.Sprintf(verb, v)
			assert.NotContains(t, s, tok, "%s with %s shows the token: %s", name, verb, s)
			assert.NotContains(t, s, fmt.Sprintf("%x", tok), "%s with %s shows the token: %s", name, verb, s)
		}
	}
	s := r.src.String()
	assert.Contains(t, s, r.agentID, "String says too little: %s", s)
	assert.Contains(t, s, "files:read", "String says too little: %s", s)
	var out bytes.Buffer
	slog.New(slog.NewJSONHandler(&out, nil)).Info("src", "source", r.src, "transport", tr)
	assert.NotContains(t, out.String(), tok, "slog: %s", out.String())
	assert.Contains(t, out.String(), r.agentID, "slog: %s", out.String())
}

// An agent's HTTP client presents the agent's cached token to a tool
// provider that checks it with tokenauth.RequireToken.
func ExampleTokenSource_Transport() {
	gw, err := agenttrusttest.NewServer() // a real gateway in production
	if err != nil {
		panic(err)
	}
	defer gw.Close()
	client, err := agenttrust.New(agenttrust.WithBaseURL(gw.URL()), agenttrust.WithAuthURL(gw.AuthURL()), agenttrust.WithAPIKey(gw.APIKey()))
	if err != nil {
		panic(err)
	}
	defer client.Close()
	agentID := gw.CreateAgent("reader", "files:read")

	tool := httptest.NewServer(tokenauth.RequireToken(client, tokenauth.WithRequiredScopes("files:read"))(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			caller, _ := tokenauth.FromContext(r.Context())
			fmt.Fprintf(w, "hello %s", caller.AgentID)
		})))
	defer tool.Close()

	src, err := client.Tokens.NewSource(agenttrust.TokenIssueParams{AgentID: agentID, Scopes: []string{"files:read"}, Target: "files"})
	if err != nil {
		panic(err)
	}
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	agentHTTP := &http.Client{Transport: src.Transport(transport)}
	resp, err := agentHTTP.Get(tool.URL)
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, string(body))
	// Output:
	// 200 hello agent-1
}

// Token returns the bearer token itself, for transports other than HTTP.
func ExampleTokenSource_Token() {
	gw, err := agenttrusttest.NewServer()
	if err != nil {
		panic(err)
	}
	defer gw.Close()
	client, err := agenttrust.New(agenttrust.WithBaseURL(gw.URL()), agenttrust.WithAuthURL(gw.AuthURL()), agenttrust.WithAPIKey(gw.APIKey()))
	if err != nil {
		panic(err)
	}
	defer client.Close()
	src, err := client.Tokens.NewSource(agenttrust.TokenIssueParams{AgentID: gw.CreateAgent("worker", "queue:publish"), Scopes: []string{"queue:publish"}})
	if err != nil {
		panic(err)
	}
	first, err := src.Token(context.Background())
	if err != nil {
		panic(err)
	}
	again, _ := src.Token(context.Background()) // from the cache
	fmt.Println(strings.HasPrefix(first, "at_"), first == again)
	// Output:
	// true true
}
