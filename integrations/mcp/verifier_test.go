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
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	require.NoError(t, err)
	return &env{gw: gw, client: c, agentID: gw.CreateAgent("mcp-agent", "tools:call", "files:read")}
}

func (e *env) issue(t *testing.T, scopes ...string) string {
	t.Helper()
	tok, err := e.client.Tokens.Issue(context.Background(), agenttrust.TokenIssueParams{AgentID: e.agentID, Scopes: scopes, NoCache: true})
	require.NoError(t, err)
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
	require.NoError(t, err, "connect (last status %d)", b.last())
	ctx := context.Background()
	tools, err := cs.ListTools(ctx, nil)
	require.NoError(t, err, "ListTools")
	require.Len(t, tools.Tools, 1, "ListTools")
	require.Equal(t, "whoami", tools.Tools[0].Name, "ListTools")
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "whoami"})
	require.NoError(t, err, "CallTool")
	require.False(t, res.IsError, "CallTool: %+v", res)
	out, _ := res.StructuredContent.(map[string]any)
	assert.Equal(t, e.agentID, out["agent_id"], "tool saw %v", out)
	assert.Equal(t, e.gw.OrgID(), out["org_id"], "tool saw %v", out)
	sc, _ := out["scopes"].([]any)
	assert.Len(t, sc, 2, "tool saw scopes %v", out["scopes"])
	// Every MCP request was introspected with the target and no required
	// scopes (the SDK checks those against the reported scopes).
	n := 0
	for _, r := range e.gw.Requests() {
		if strings.HasSuffix(r.Path, "/agent-tokens/introspect") {
			n++
			assert.Contains(t, string(r.Body), `"target":"files"`, "introspection body")
			assert.Contains(t, string(r.Body), `"required_scopes":[]`, "introspection body")
		}
	}
	assert.NotZero(t, n, "no introspection reached the gateway")
}

func TestRevokedTokenIs401(t *testing.T) {
	e := newEnv(t)
	url := mcpServer(t, agenttrustmcp.RequireToken(e.client, tokenauth.WithRequiredScopes("tools:call"), tokenauth.WithCache(0)))
	tok := e.issue(t, "tools:call")
	b := &bearer{token: tok}
	cs, err := connect(t, url, b)
	require.NoError(t, err, "connect")
	require.NoError(t, e.client.Tokens.Revoke(context.Background(), tok, ""))
	_, err = cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami"})
	require.Error(t, err, "a revoked token called the tool")
	assert.Equal(t, http.StatusUnauthorized, b.last(), "status (%v)", err)
	// A new connection with the revoked token is refused at once.
	b2 := &bearer{token: tok}
	_, err = connect(t, url, b2)
	assert.Error(t, err, "connect with a revoked token")
	assert.Equal(t, http.StatusUnauthorized, b2.last(), "connect with a revoked token")
}

func TestInsufficientScopeIs403(t *testing.T) {
	e := newEnv(t)
	url := mcpServer(t, agenttrustmcp.RequireToken(e.client, tokenauth.WithRequiredScopes("tools:call")))
	b := &bearer{token: e.issue(t, "files:read")}
	_, err := connect(t, url, b)
	require.Error(t, err, "connect without tools:call")
	require.Equal(t, http.StatusForbidden, b.last(), "connect without tools:call")
}

func TestGatewayFailureIsNotAnAllow(t *testing.T) {
	e := newEnv(t)
	url := mcpServer(t, agenttrustmcp.RequireToken(e.client, tokenauth.WithRequiredScopes("tools:call")))
	b := &bearer{token: e.issue(t, "tools:call")}
	e.gw.InjectFault("POST /api/v1/agent-tokens/introspect", agenttrusttest.Fault{Status: 503})
	_, err := connect(t, url, b)
	require.Error(t, err, "connect with the gateway failing")
	require.Equal(t, http.StatusInternalServerError, b.last(), "connect with the gateway failing")
	e.gw.ClearFaults()
	_, err = connect(t, url, b)
	assert.NoError(t, err, "after recovery")
}

// The verifier's errors, directly.
func TestVerifierMapping(t *testing.T) {
	e := newEnv(t)
	v, err := agenttrustmcp.NewVerifier(e.client, tokenauth.WithCache(0))
	require.NoError(t, err)
	tok := e.issue(t, "tools:call")
	ti, err := v(context.Background(), tok, nil)
	require.NoError(t, err)
	assert.Equal(t, e.agentID, ti.UserID, "TokenInfo %+v", ti)
	assert.Equal(t, e.gw.OrgID(), ti.Extra[agenttrustmcp.ExtraOrgID], "TokenInfo %+v", ti)
	assert.Equal(t, e.agentID, ti.Extra[agenttrustmcp.ExtraAgentID], "TokenInfo %+v", ti)
	assert.Equal(t, []string{"tools:call"}, ti.Scopes, "TokenInfo %+v", ti)
	assert.False(t, ti.Expiration.IsZero(), "TokenInfo %+v", ti)
	r, ok := agenttrustmcp.Introspection(ti)
	if assert.True(t, ok, "Introspection") {
		assert.True(t, r.Active, "Introspection: %+v", r)
		assert.Equal(t, e.agentID, r.AgentID, "Introspection: %+v", r)
	}
	_, ok = agenttrustmcp.Introspection(nil)
	assert.False(t, ok, "Introspection(nil) reported a result")

	_, err = v(context.Background(), "at_unknown", nil)
	assert.ErrorIs(t, err, auth.ErrInvalidToken, "unknown token")
	assert.ErrorIs(t, err, tokenauth.ErrInvalidToken, "unknown token")
	assert.NotErrorIs(t, err, agenttrustmcp.ErrGatewayUnavailable, "unknown token")
	// The SDK sends the error text to the caller: it is fixed, and the
	// reasoning stays in the wrapped rejection for the server's logs.
	assert.EqualError(t, err, auth.ErrInvalidToken.Error(), "want the fixed message")
	var rej *tokenauth.RejectedError
	if assert.ErrorAs(t, err, &rej, "the rejection does not carry the reasoning") {
		assert.Equal(t, "unknown token", rej.Reasoning, "the rejection does not carry the reasoning")
	}

	e.gw.InjectFault("POST /api/v1/agent-tokens/introspect", agenttrusttest.Fault{Status: 500})
	_, err = v(context.Background(), tok, nil)
	if assert.Error(t, err, "gateway failure") {
		assert.NotErrorIs(t, err, auth.ErrInvalidToken, "gateway failure")
		assert.ErrorIs(t, err, agenttrustmcp.ErrGatewayUnavailable, "gateway failure")
		assert.ErrorIs(t, err, agenttrust.ErrAgentTrust, "gateway failure")
		assert.NotContains(t, err.Error(), "127.0.0.1", "the error text exposes details")
		assert.NotContains(t, err.Error(), tok, "the error text exposes details")
	}
	e.gw.ClearFaults()

	// Scopes required by the verifier itself are enforced by the gateway,
	// which answers inactive for a token lacking one: an invalid token,
	// decided from the active field and not from the reasoning.
	vs, err := agenttrustmcp.NewVerifier(e.client, tokenauth.WithRequiredScopes("files:read"))
	require.NoError(t, err)
	_, err = vs(context.Background(), tok, nil)
	assert.ErrorIs(t, err, auth.ErrInvalidToken, "missing verifier scope")
	assert.NotErrorIs(t, err, tokenauth.ErrInsufficientScope, "missing verifier scope")
}

func TestMisconfiguredVerifierRefuses(t *testing.T) {
	_, err := agenttrustmcp.NewVerifier(nil)
	assert.ErrorIs(t, err, agenttrust.ErrValidation, "NewVerifier(nil)")
	v := agenttrustmcp.Verifier(nil)
	ti, err := v(context.Background(), "at_x", nil)
	assert.Nil(t, ti, "misconfigured verifier")
	assert.Error(t, err, "misconfigured verifier")
	assert.NotErrorIs(t, err, auth.ErrInvalidToken, "misconfigured verifier")
	assert.ErrorIs(t, err, agenttrust.ErrValidation, "misconfigured verifier")
	// Through the SDK middleware: a 500, not an allow.
	h := agenttrustmcp.RequireToken(nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Fail(t, "the handler ran")
	}))
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	req.Header.Set("Authorization", "Bearer at_x")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusInternalServerError, rec.Code, "status")
}

// Through the SDK's middleware: a malformed request is 400 (RFC 6750
// invalid_request) without a gateway call, an inactive token is 401, and no
// answer echoes the gateway's reasoning or the token.
func TestHTTPAnswers(t *testing.T) {
	e := newEnv(t)
	tok := e.issue(t, "tools:call")
	require.NoError(t, e.client.Tokens.Revoke(context.Background(), tok, ""))
	h := agenttrustmcp.RequireToken(e.client, tokenauth.WithRequiredScopes("tools:call"), tokenauth.WithCache(0))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		assert.Fail(t, "the handler ran")
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
			assert.Equal(t, tc.status, rec.Code, "status (%s)", rec.Body)
			body := rec.Body.String()
			for _, secret := range []string{"revoked", "unknown token", tok} {
				assert.NotContains(t, body, secret, "the answer echoes a secret")
			}
			assert.Equal(t, tc.calls, introspections()-before, "introspections")
		})
	}
}
