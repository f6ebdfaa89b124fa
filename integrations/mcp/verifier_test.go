package agenttrustmcp_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	agenttrustmcp "github.com/agenttrustid/agenttrust-go/integrations/mcp"
	"github.com/agenttrustid/agenttrust-go/tokenauth"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is a fake gateway, an SDK client for it, and an agent allowed the
// scopes tools:call and files:read.
type env struct {
	gw      *agenttrusttest.Server
	client  *agenttrust.Client
	agentID string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	gw := agenttrusttest.NewTestServer(t)
	c, err := agenttrust.New(agenttrust.WithBaseURL(gw.URL()), agenttrust.WithAuthURL(gw.AuthURL()),
		agenttrust.WithAPIKey(gw.APIKey()), agenttrust.WithRetryPolicy(agenttrust.RetryPolicy{}))
	if err != nil {
		t.Fatal(err)
	}
	return &env{gw: gw, client: c, agentID: gw.CreateAgent("mcp-agent", "tools:call", "files:read")}
}

func (e *env) issue(t *testing.T, scopes ...string) string {
	t.Helper()
	tok, err := e.client.Tokens.Issue(context.Background(), agenttrust.TokenIssueParams{AgentID: e.agentID, Scopes: scopes, NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Token
}

type whoamiOut struct {
	AgentID string   `json:"agent_id"`
	OrgID   string   `json:"org_id"`
	Scopes  []string `json:"scopes"`
}

// mcpServer serves one tool, "whoami", which reports what the verifier put
// in the request, behind protect.
func mcpServer(t *testing.T, protect func(http.Handler) http.Handler) string {
	t.Helper()
	server := mcp.NewServer(&mcp.Implementation{Name: "files", Version: "1.0.0"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "whoami", Description: "Reports the calling agent."},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, whoamiOut, error) {
			ti := req.Extra.TokenInfo
			res, ok := agenttrustmcp.Introspection(ti)
			if ti == nil || !ok {
				return nil, whoamiOut{}, errors.New("no token info")
			}
			return nil, whoamiOut{AgentID: ti.UserID, OrgID: res.OrgID, Scopes: ti.Scopes}, nil
		})
	handler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)
	srv := httptest.NewServer(protect(handler))
	t.Cleanup(func() {
		srv.Close()
		// Sessions whose client could not say goodbye (its token was
		// revoked, so the DELETE was refused) end here.
		for ss := range server.Sessions() {
			ss.Close()
		}
	})
	return srv.URL
}

// bearer adds the token to every request and records the statuses.
type bearer struct {
	token string
	mu    sync.Mutex
	codes []int
}

func (b *bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		b.mu.Lock()
		b.codes = append(b.codes, resp.StatusCode)
		b.mu.Unlock()
	}
	return resp, err
}

func (b *bearer) last() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.codes) == 0 {
		return 0
	}
	return b.codes[len(b.codes)-1]
}

func connect(t *testing.T, url string, b *bearer) (*mcp.ClientSession, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1.0.0"}, nil)
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint: url, HTTPClient: &http.Client{Transport: b}, MaxRetries: -1, DisableStandaloneSSE: true,
	}, nil)
	if err == nil {
		t.Cleanup(func() { cs.Close() })
	}
	return cs, err
}

func TestAllowedListsAndCalls(t *testing.T) {
	e := newEnv(t)
	url := mcpServer(t, agenttrustmcp.RequireToken(e.client, tokenauth.WithRequiredScopes("tools:call"), tokenauth.WithTarget("files")))
	b := &bearer{token: e.issue(t, "tools:call", "files:read")}
	cs, err := connect(t, url, b)
	if err != nil {
		t.Fatalf("connect: %v (last status %d)", err, b.last())
	}
	ctx := context.Background()
	tools, err := cs.ListTools(ctx, nil)
	if err != nil || len(tools.Tools) != 1 || tools.Tools[0].Name != "whoami" {
		t.Fatalf("ListTools: %v %v", tools, err)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "whoami"})
	if err != nil || res.IsError {
		t.Fatalf("CallTool: %v %+v", err, res)
	}
	out, _ := res.StructuredContent.(map[string]any)
	if out["agent_id"] != e.agentID || out["org_id"] != e.gw.OrgID() {
		t.Errorf("tool saw %v, want agent %s org %s", out, e.agentID, e.gw.OrgID())
	}
	if sc, _ := out["scopes"].([]any); len(sc) != 2 {
		t.Errorf("tool saw scopes %v", out["scopes"])
	}
	// Every MCP request was introspected with the target and no required
	// scopes (the SDK checks those against the reported scopes).
	n := 0
	for _, r := range e.gw.Requests() {
		if strings.HasSuffix(r.Path, "/agent-tokens/introspect") {
			n++
			if !strings.Contains(string(r.Body), `"target":"files"`) || !strings.Contains(string(r.Body), `"required_scopes":[]`) {
				t.Errorf("introspection body %s", r.Body)
			}
		}
	}
	if n == 0 {
		t.Error("no introspection reached the gateway")
	}
}

func TestRevokedTokenIs401(t *testing.T) {
	e := newEnv(t)
	url := mcpServer(t, agenttrustmcp.RequireToken(e.client, tokenauth.WithRequiredScopes("tools:call"), tokenauth.WithCache(0)))
	tok := e.issue(t, "tools:call")
	b := &bearer{token: tok}
	cs, err := connect(t, url, b)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	if err := e.client.Tokens.Revoke(context.Background(), tok, ""); err != nil {
		t.Fatal(err)
	}
	_, err = cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami"})
	if err == nil {
		t.Fatal("a revoked token called the tool")
	}
	if b.last() != http.StatusUnauthorized {
		t.Errorf("status %d, want 401 (%v)", b.last(), err)
	}
	// A new connection with the revoked token is refused at once.
	b2 := &bearer{token: tok}
	if _, err := connect(t, url, b2); err == nil || b2.last() != http.StatusUnauthorized {
		t.Errorf("connect with a revoked token: %v, status %d", err, b2.last())
	}
}

func TestInsufficientScopeIs403(t *testing.T) {
	e := newEnv(t)
	url := mcpServer(t, agenttrustmcp.RequireToken(e.client, tokenauth.WithRequiredScopes("tools:call")))
	b := &bearer{token: e.issue(t, "files:read")}
	_, err := connect(t, url, b)
	if err == nil || b.last() != http.StatusForbidden {
		t.Fatalf("connect without tools:call: %v, status %d; want 403", err, b.last())
	}
}

func TestGatewayFailureIsNotAnAllow(t *testing.T) {
	e := newEnv(t)
	url := mcpServer(t, agenttrustmcp.RequireToken(e.client, tokenauth.WithRequiredScopes("tools:call")))
	b := &bearer{token: e.issue(t, "tools:call")}
	e.gw.InjectFault("POST /api/v1/agent-tokens/introspect", agenttrusttest.Fault{Status: 503})
	_, err := connect(t, url, b)
	if err == nil || b.last() != http.StatusInternalServerError {
		t.Fatalf("connect with the gateway failing: %v, status %d; want 500", err, b.last())
	}
	e.gw.ClearFaults()
	if _, err := connect(t, url, b); err != nil {
		t.Errorf("after recovery: %v", err)
	}
}

// The verifier's errors, directly.
func TestVerifierMapping(t *testing.T) {
	e := newEnv(t)
	v, err := agenttrustmcp.NewVerifier(e.client, tokenauth.WithCache(0))
	if err != nil {
		t.Fatal(err)
	}
	tok := e.issue(t, "tools:call")
	ti, err := v(context.Background(), tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ti.UserID != e.agentID || ti.Extra[agenttrustmcp.ExtraOrgID] != e.gw.OrgID() || ti.Extra[agenttrustmcp.ExtraAgentID] != e.agentID ||
		len(ti.Scopes) != 1 || ti.Scopes[0] != "tools:call" || ti.Expiration.IsZero() {
		t.Errorf("TokenInfo %+v", ti)
	}
	if r, ok := agenttrustmcp.Introspection(ti); !ok || !r.Active || r.AgentID != e.agentID {
		t.Errorf("Introspection: %+v %v", r, ok)
	}
	if _, ok := agenttrustmcp.Introspection(nil); ok {
		t.Error("Introspection(nil) reported a result")
	}

	_, err = v(context.Background(), "at_unknown", nil)
	if !errors.Is(err, auth.ErrInvalidToken) || !errors.Is(err, tokenauth.ErrInvalidToken) || errors.Is(err, agenttrustmcp.ErrGatewayUnavailable) {
		t.Errorf("unknown token: %v", err)
	}
	// The SDK sends the error text to the caller: it is fixed, and the
	// reasoning stays in the wrapped rejection for the server's logs.
	if err.Error() != auth.ErrInvalidToken.Error() {
		t.Errorf("message %q, want the fixed %q", err, auth.ErrInvalidToken)
	}
	var rej *tokenauth.RejectedError
	if !errors.As(err, &rej) || rej.Reasoning != "unknown token" {
		t.Errorf("the rejection does not carry the reasoning: %v", rej)
	}

	e.gw.InjectFault("POST /api/v1/agent-tokens/introspect", agenttrusttest.Fault{Status: 500})
	_, err = v(context.Background(), tok, nil)
	if err == nil || errors.Is(err, auth.ErrInvalidToken) || !errors.Is(err, agenttrustmcp.ErrGatewayUnavailable) || !errors.Is(err, agenttrust.ErrAgentTrust) {
		t.Errorf("gateway failure: %v", err)
	}
	if strings.Contains(err.Error(), "127.0.0.1") || strings.Contains(err.Error(), tok) {
		t.Errorf("the error text exposes details: %q", err)
	}
	e.gw.ClearFaults()

	// Scopes required by the verifier itself are enforced by the gateway,
	// which answers inactive for a token lacking one: an invalid token,
	// decided from the active field and not from the reasoning.
	vs, err := agenttrustmcp.NewVerifier(e.client, tokenauth.WithRequiredScopes("files:read"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vs(context.Background(), tok, nil); !errors.Is(err, auth.ErrInvalidToken) || errors.Is(err, tokenauth.ErrInsufficientScope) {
		t.Errorf("missing verifier scope: %v", err)
	}
}

func TestMisconfiguredVerifierRefuses(t *testing.T) {
	if _, err := agenttrustmcp.NewVerifier(nil); !errors.Is(err, agenttrust.ErrValidation) {
		t.Errorf("NewVerifier(nil): %v", err)
	}
	v := agenttrustmcp.Verifier(nil)
	ti, err := v(context.Background(), "at_x", nil)
	if ti != nil || err == nil || errors.Is(err, auth.ErrInvalidToken) || !errors.Is(err, agenttrust.ErrValidation) {
		t.Errorf("misconfigured verifier: %v %v", ti, err)
	}
	// Through the SDK middleware: a 500, not an allow.
	h := agenttrustmcp.RequireToken(nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the handler ran")
	}))
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	req.Header.Set("Authorization", "Bearer at_x")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("status %d, want 500", rec.Code)
	}
}

// Through the SDK's middleware: a malformed request is 400 (RFC 6750
// invalid_request) without a gateway call, an inactive token is 401, and no
// answer echoes the gateway's reasoning or the token.
func TestHTTPAnswers(t *testing.T) {
	e := newEnv(t)
	tok := e.issue(t, "tools:call")
	if err := e.client.Tokens.Revoke(context.Background(), tok, ""); err != nil {
		t.Fatal(err)
	}
	h := agenttrustmcp.RequireToken(e.client, tokenauth.WithRequiredScopes("tools:call"), tokenauth.WithCache(0))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("the handler ran")
	}))
	introspections := func() int {
		n := 0
		for _, r := range e.gw.Requests() {
			if strings.HasSuffix(r.Path, "/agent-tokens/introspect") {
				n++
			}
		}
		return n
	}
	cases := []struct {
		name   string
		authz  []string
		status int
		calls  int // introspections expected
	}{
		{"revoked", []string{"Bearer " + tok}, http.StatusUnauthorized, 1},
		{"unknown", []string{"Bearer at_unknown_token_123"}, http.StatusUnauthorized, 1},
		{"malformed token", []string{"Bearer at_=abc"}, http.StatusBadRequest, 0},
		{"too long", []string{"Bearer at_" + strings.Repeat("x", 5000)}, http.StatusBadRequest, 0},
		{"two headers", []string{"Bearer " + tok, "Bearer at_other"}, http.StatusBadRequest, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := introspections()
			req := httptest.NewRequest(http.MethodPost, "/", nil)
			for _, a := range tc.authz {
				req.Header.Add("Authorization", a)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Errorf("status %d, want %d (%s)", rec.Code, tc.status, rec.Body)
			}
			body := rec.Body.String()
			for _, secret := range []string{"revoked", "unknown token", tok} {
				if strings.Contains(body, secret) {
					t.Errorf("the answer %q echoes %q", body, secret)
				}
			}
			if n := introspections() - before; n != tc.calls {
				t.Errorf("%d introspections, want %d", n, tc.calls)
			}
		})
	}
}
