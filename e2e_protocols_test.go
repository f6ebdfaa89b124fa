package agenttrust

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// End-to-end tests of the protocol APIs against the fake gateway on
// loopback.

func TestE2EAgentCards(t *testing.T) {
	ctx := context.Background()
	srv, c := newE2E(t)
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	pubPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	id := srv.SeedAgent(agenttrusttest.AgentSeed{Name: "carded", Capabilities: []string{"read"}, PublicKey: pubPEM})

	_, err = c.AgentCards.Get(ctx, id)
	wantCode(t, err, CodeNotFound) // not generated yet
	card, err := c.AgentCards.Generate(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, "carded", card.Name, "card %s: url %q score %v", card.Name, card.PrimaryURL(), card.TrustScore())
	assert.True(t, strings.HasSuffix(card.PrimaryURL(), "/a2a/agents/"+id), "card %s: url %q score %v", card.Name, card.PrimaryURL(), card.TrustScore())
	assert.Equal(t, 0.9, card.TrustScore(), "card %s: url %q score %v", card.Name, card.PrimaryURL(), card.TrustScore())
	got, ok := card.AgentPublicKeyPEM()
	assert.True(t, ok, "agent key %q, %v; want %q", got, ok, pubPEM)
	assert.Equal(t, pubPEM, got, "agent key %q, %v; want %q", got, ok, pubPEM)
	_, err = c.AgentCards.Get(ctx, id)
	assert.NoError(t, err, "get after generate")

	// The public card needs no API key, but only exists once published.
	anon, err := New(WithBaseURL(srv.URL()), WithRetryPolicy(RetryPolicy{}))
	require.NoError(t, err)
	_, err = anon.AgentCards.GetPublic(ctx, id)
	wantCode(t, err, CodeNotFound)
	_, err = anon.AgentCards.Generate(ctx, id)
	assert.ErrorIs(t, err, ErrAuthentication, "generate without a key: %v", err)
	_, err = c.AgentCards.Publish(ctx, id)
	require.NoError(t, err)
	pubCard, err := anon.AgentCards.GetPublic(ctx, id)
	require.NoError(t, err)
	assert.NotEmpty(t, pubCard.Signatures, "published card has no signatures")
	_, err = c.AgentCards.Get(ctx, "no-such-agent")
	assert.ErrorIs(t, err, ErrNotFound, "unknown agent: %v", err)
}

func TestE2EA2A(t *testing.T) {
	ctx := context.Background()
	srv, c := newE2E(t)
	a1, a2 := srv.CreateAgent("source"), srv.CreateAgent("target")

	task, err := c.A2A.SendTask(ctx, A2ASendTaskParams{SourceAgentID: a1, TargetAgentID: a2, Message: "summarise <q3> & report", Metadata: map[string]any{"prio": 1}})
	require.NoError(t, err)
	assert.NotEmpty(t, task.ID, "task = %+v", task)
	assert.Equal(t, "pending", task.Status, "task = %+v", task)
	assert.Equal(t, "summarise <q3> & report", task.Message, "task = %+v", task)
	assert.Equal(t, float64(1), task.Metadata["prio"], "task = %+v", task)
	assert.False(t, task.CreatedAt.IsZero(), "task = %+v", task)
	got, err := c.A2A.GetTask(ctx, task.ID)
	require.NoError(t, err, "get: %+v", got)
	require.Equal(t, task.ID, got.ID, "get: %+v, %v", got, err)
	cancelled, err := c.A2A.CancelTask(ctx, task.ID)
	require.NoError(t, err, "cancel: %+v", cancelled)
	require.Equal(t, "cancelled", cancelled.Status, "cancel: %+v, %v", cancelled, err)
	_, err = c.A2A.CancelTask(ctx, task.ID)
	var rpc *JSONRPCError
	require.ErrorAs(t, err, &rpc, "second cancel: %v", err)
	assert.NotEqual(t, 0, rpc.RPCCode, "second cancel: %v", err)
	assert.NotEmpty(t, rpc.RPCMessage, "second cancel: %v", err)
	_, err = c.A2A.GetTask(ctx, "task-missing")
	require.ErrorAs(t, err, &rpc, "unknown task: %v", err)
	assert.Contains(t, rpc.Message, "not found", "unknown task: %v", err)
	_, err = c.A2A.SendTask(ctx, A2ASendTaskParams{SourceAgentID: a1, TargetAgentID: "nobody", Message: "m"})
	require.ErrorAs(t, err, &rpc, "unknown target: %v", err)
	assert.Equal(t, -32602, rpc.RPCCode, "unknown target: %v", err)

	mt, err := c.A2A.SendMessage(ctx, a2, A2ASendMessageParams{Text: "hello"})
	require.NoError(t, err)
	assert.NotEmpty(t, mt.ID, "message task = %+v", mt)
	assert.NotEmpty(t, mt.ContextID, "message task = %+v", mt)
	assert.Equal(t, "completed", mt.State, "message task = %+v", mt)
	assert.NotEmpty(t, mt.StatusTimestamp, "message task = %+v", mt)
	assert.NotEmpty(t, mt.History, "message task = %+v", mt)
	assert.NotEmpty(t, mt.Artifacts, "message task = %+v", mt)
	assert.Contains(t, string(mt.Raw), "echo: hello", "raw %s", mt.Raw)
	next, err := c.A2A.SendMessage(ctx, a2, A2ASendMessageParams{Text: "again", TaskID: mt.ID, MessageID: "m-2"})
	require.NoError(t, err, "continued task: %+v", next)
	assert.Equal(t, mt.ID, next.ID, "continued task: %+v, %v", next, err)
	assert.Greater(t, len(next.History), len(mt.History), "continued task: %+v, %v", next, err)
}

// mcpUpstream is a real JSON-RPC MCP server on loopback.
type mcpUpstream struct {
	*httptest.Server
	mu     sync.Mutex
	agents []string
}

func newMCPUpstream(t *testing.T) *mcpUpstream {
	u := &mcpUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params struct {
				Name      string         `json:"name"`
				Arguments map[string]any `json:"arguments"`
			} `json:"params"`
		}
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.agents = append(u.agents, r.Header.Get("X-Agent-ID")+"|"+r.Header.Get("X-Session-ID"))
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if err := json.Unmarshal(body, &req); err != nil {
			_, _ = io.WriteString(w, `{"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "parse error"}}`)
			return
		}
		var reply map[string]any
		switch {
		case req.Method == "tools/list":
			reply = map[string]any{"result": map[string]any{"tools": []any{map[string]any{"name": "echo"}}}}
		case req.Method == "tools/call" && req.Params.Name == "echo":
			reply = map[string]any{"result": map[string]any{"content": []any{map[string]any{"type": "text", "text": req.Params.Arguments["text"]}}}}
		case req.Method == "tools/call":
			reply = map[string]any{"error": map[string]any{"code": -32602, "message": "unknown tool " + req.Params.Name, "data": map[string]any{"tool": req.Params.Name}}}
		default:
			reply = map[string]any{"error": map[string]any{"code": -32601, "message": "method not found"}}
		}
		reply["jsonrpc"], reply["id"] = "2.0", req.ID
		_ = json.NewEncoder(w).Encode(reply)
	}))
	t.Cleanup(u.Close)
	return u
}

func TestE2EMCP(t *testing.T) {
	ctx := context.Background()
	srv, c := newE2E(t)
	up := newMCPUpstream(t)
	agent := srv.CreateAgent("tool-user", "read")

	reg, err := c.MCP.RegisterServer(ctx, MCPRegisterServerParams{Name: "echo-server", URL: up.URL, Capabilities: []string{"echo"}})
	require.NoError(t, err)
	assert.NotEmpty(t, reg.ID, "registered %+v", reg)
	assert.Equal(t, up.URL, reg.URL, "registered %+v", reg)
	require.Len(t, reg.Capabilities, 1, "registered %+v", reg)
	assert.False(t, reg.CreatedAt.IsZero(), "registered %+v", reg)
	list, err := c.MCP.ListServers(ctx, MCPListServersParams{})
	require.NoError(t, err, "list: %+v", list)
	require.Len(t, list, 1, "list: %+v, %v", list, err)
	require.Equal(t, reg.ID, list[0].ID, "list: %+v, %v", list, err)

	raw, err := c.MCP.CallTool(ctx, reg.ID, MCPCallToolParams{AgentID: agent, SessionID: "sess-9", Method: "tools/call",
		Params: map[string]any{"name": "echo", "arguments": map[string]any{"text": "hi <there> & you"}}})
	require.NoError(t, err)
	type toolResult struct {
		Content []struct {
			Type, Text string
		} `json:"content"`
	}
	res, err := DecodeResult[toolResult](raw)
	require.NoError(t, err, "result %s: %+v", raw, res)
	require.Len(t, res.Content, 1, "result %s: %+v, %v", raw, res, err)
	assert.Equal(t, "hi <there> & you", res.Content[0].Text, "result %s: %+v, %v", raw, res, err)
	_, err = c.MCP.CallTool(ctx, reg.ID, MCPCallToolParams{AgentID: agent, Method: "tools/list"})
	assert.NoError(t, err, "tools/list without params")

	_, err = c.MCP.CallTool(ctx, reg.ID, MCPCallToolParams{AgentID: agent, Method: "tools/call", Params: map[string]any{"name": "rm"}})
	var rpc *JSONRPCError
	require.ErrorAs(t, err, &rpc, "upstream JSON-RPC error: %v (%+v)", err, rpc)
	assert.Equal(t, -32602, rpc.RPCCode, "upstream JSON-RPC error: %v (%+v)", err, rpc)
	assert.Equal(t, "unknown tool rm", rpc.RPCMessage, "upstream JSON-RPC error: %v (%+v)", err, rpc)
	assert.Equal(t, `{"tool":"rm"}`, string(rpc.RPCData), "upstream JSON-RPC error: %v (%+v)", err, rpc)
	up.mu.Lock()
	seen := append([]string(nil), up.agents...)
	up.mu.Unlock()
	require.Len(t, seen, 3, "upstream saw agents %q", seen)
	assert.Equal(t, agent+"|sess-9", seen[0], "upstream saw agents %q", seen)
	assert.Equal(t, agent+"|", seen[1], "upstream saw agents %q", seen)

	_, err = c.MCP.CallTool(ctx, reg.ID, MCPCallToolParams{AgentID: "ghost", Method: "tools/list"})
	assert.ErrorIs(t, err, ErrAuthorization, "unknown agent: %v", err)
	_, err = c.MCP.CallTool(ctx, reg.ID, MCPCallToolParams{Method: "tools/list"})
	wantCode(t, err, CodeValidation)

	require.NoError(t, c.MCP.RemoveServer(ctx, reg.ID))
	_, err = c.MCP.CallTool(ctx, reg.ID, MCPCallToolParams{AgentID: agent, Method: "tools/list"})
	wantCode(t, err, CodeNotFound)
	err = c.MCP.RemoveServer(ctx, reg.ID)
	assert.ErrorIs(t, err, ErrNotFound, "second remove: %v", err)

	// call_tool is not retried after a 503, even with retries on.
	srv2, c2 := newE2E(t, WithRetryPolicy(RetryPolicy{MaxRetries: 2, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond}))
	agent2 := srv2.CreateAgent("a")
	reg2, err := c2.MCP.RegisterServer(ctx, MCPRegisterServerParams{Name: "s", URL: up.URL})
	require.NoError(t, err)
	srv2.InjectFault("POST /mcp/{server_id}", agenttrusttest.Fault{Status: 503, Times: 1})
	srv2.ClearRequests()
	_, err = c2.MCP.CallTool(ctx, reg2.ID, MCPCallToolParams{AgentID: agent2, Method: "tools/list"})
	wantCode(t, err, "HTTP_503")
	n := len(srv2.Requests())
	assert.Equal(t, 1, n, "call_tool sent %d times", n)
}

func TestE2EDelegations(t *testing.T) {
	ctx := context.Background()
	srv, c := newE2E(t)
	boss := srv.CreateAgent("boss", "read", "write")
	worker := srv.CreateAgent("worker", "read")
	intern := srv.CreateAgent("intern")

	d, err := c.Delegations.Create(ctx, DelegationCreateParams{FromAgentID: boss, ToAgentID: worker, Scope: []string{"read", "write"}, Restrictions: map[string]any{}})
	require.NoError(t, err)
	assert.NotEmpty(t, d.ID, "delegation = %+v", d)
	assert.Equal(t, boss, d.FromAgentID, "delegation = %+v", d)
	assert.Len(t, d.Scope, 2, "delegation = %+v", d)
	assert.Len(t, d.DelegationChain, 1, "delegation = %+v", d)
	assert.Equal(t, time.Hour, d.ExpiresAt.Sub(d.CreatedAt), "delegation = %+v", d)
	assert.True(t, d.RevokedAt.IsZero(), "delegation = %+v", d)
	// A delegation's scope cannot exceed the delegator's.
	_, err = c.Delegations.Create(ctx, DelegationCreateParams{FromAgentID: boss, ToAgentID: worker, Scope: []string{"admin"}})
	e := wantCode(t, err, CodeAuthDenied)
	assert.Contains(t, e.Message, "admin", "over-wide scope: %v", err)
	// Re-delegation narrows within the parent.
	child, err := c.Delegations.Create(ctx, DelegationCreateParams{FromAgentID: worker, ToAgentID: intern, Scope: []string{"write"}, TTLSeconds: 60, ParentDelegationID: &d.ID})
	require.NoError(t, err)
	require.Len(t, child.DelegationChain, 2, "chain %v", child.DelegationChain)
	assert.Equal(t, d.ID, child.DelegationChain[0], "chain %v", child.DelegationChain)
	_, err = c.Delegations.Create(ctx, DelegationCreateParams{FromAgentID: worker, ToAgentID: intern, Scope: []string{"delete"}, ParentDelegationID: &d.ID})
	wantCode(t, err, CodeAuthDenied)
	_, err = c.Delegations.Create(ctx, DelegationCreateParams{FromAgentID: worker, ToAgentID: intern, Scope: []string{"read"}, ParentDelegationID: Ptr("")})
	wantCode(t, err, CodeNotFound) // "" was sent and looked up

	list, err := c.Delegations.List(ctx, DelegationListParams{})
	require.NoError(t, err, "list: %+v", list)
	require.Len(t, list, 2, "list: %+v, %v", list, err)
	sess, err := c.Delegations.InitSession(ctx, child.ID)
	require.NoError(t, err)
	assert.NotEmpty(t, sess.SessionID, "session = %+v", sess)
	assert.Equal(t, SessionSourceA2A, sess.Source, "session = %+v", sess)
	assert.Equal(t, child.ID, sess.DelegationID, "session = %+v", sess)
	assert.Equal(t, SessionModeReadOnly, sess.Mode, "session = %+v", sess)
	require.NoError(t, c.Delegations.Revoke(ctx, d.ID))
	list, _ = c.Delegations.List(ctx, DelegationListParams{})
	for _, x := range list {
		assert.False(t, x.RevokedAt.IsZero(), "delegation %s not revoked with its parent", x.ID)
	}
	_, err = c.Delegations.InitSession(ctx, child.ID)
	assert.Error(t, err, "session on a revoked delegation")
	err = c.Delegations.Revoke(ctx, "del-none")
	assert.ErrorIs(t, err, ErrNotFound, "unknown revoke: %v", err)
}

func TestE2EFederation(t *testing.T) {
	ctx := context.Background()
	srv, c := newE2E(t)
	agent := srv.CreateAgent("fed-agent", "read")
	const issuer = "https://idp.example"

	p, err := c.Federation.RegisterProvider(ctx, FederationRegisterProviderParams{Issuer: issuer, Name: "IdP", TrustLevel: Ptr("high")})
	require.NoError(t, err)
	assert.NotEmpty(t, p.ID, "provider = %+v", p)
	assert.Equal(t, issuer, p.Issuer, "provider = %+v", p)
	assert.Equal(t, "high", p.TrustLevel, "provider = %+v", p)
	_, err = c.Federation.RegisterProvider(ctx, FederationRegisterProviderParams{Issuer: issuer, Name: "dup"})
	assert.Error(t, err, "duplicate issuer accepted")
	provs, err := c.Federation.ListProviders(ctx, FederationListProvidersParams{})
	require.NoError(t, err, "list: %+v", provs)
	require.Len(t, provs, 1, "list: %+v, %v", provs, err)
	require.Equal(t, p.ID, provs[0].ID, "list: %+v, %v", provs, err)

	const token = "eyJhbGciOiJub25lIn0.fed.token"
	srv.AddFederatedToken(token, issuer, agent, srv.Now().Add(time.Hour))
	res, err := c.Federation.IntrospectToken(ctx, FederationIntrospectParams{Token: token, IssuerHint: issuer})
	require.NoError(t, err, "introspect: %+v", res)
	require.True(t, res.Active, "introspect: %+v, %v", res, err)
	require.Equal(t, agent, res.AgentID, "introspect: %+v, %v", res, err)
	require.Equal(t, issuer, res.Issuer, "introspect: %+v, %v", res, err)
	require.False(t, res.ExpiresAt.IsZero(), "introspect: %+v, %v", res, err)
	res, err = c.Federation.VerifyToken(ctx, FederationIntrospectParams{Token: "unknown"})
	require.NoError(t, err, "unknown token: %+v", res)
	assert.False(t, res.Active, "unknown token: %+v, %v", res, err)
	assert.NotEmpty(t, res.Error, "unknown token: %+v, %v", res, err)

	// A gateway without /introspect: the SDK falls back to /verify, which
	// answers "valid".
	srv.InjectFault("POST /api/v1/federation/tokens/introspect", agenttrusttest.Fault{Status: 404, Body: `{"error": "not found"}`})
	srv.ClearRequests()
	res, err = c.Federation.IntrospectToken(ctx, FederationIntrospectParams{Token: token})
	require.NoError(t, err, "fallback: %+v", res)
	require.True(t, res.Active, "fallback: %+v, %v", res, err)
	require.True(t, res.Valid(), "fallback: %+v, %v", res, err)
	reqs := srv.Requests()
	require.Len(t, reqs, 2, "fallback requests %+v", reqs)
	assert.True(t, strings.HasSuffix(reqs[1].Path, "/tokens/verify"), "fallback requests %+v", reqs)
	assert.Equal(t, string(reqs[1].Body), string(reqs[0].Body), "fallback requests %+v", reqs)
	srv.ClearFaults()

	sess, err := c.Federation.InitSession(ctx, FederationInitSessionParams{Token: token})
	require.NoError(t, err)
	assert.Equal(t, SessionSourceFederation, sess.Source, "session = %+v", sess)
	assert.Equal(t, p.ID, sess.ProviderID, "session = %+v", sess)
	assert.Equal(t, "high", sess.TrustLevel, "session = %+v", sess)
	assert.Len(t, sess.ScopeCeiling, 1, "session = %+v", sess)
	_, err = c.Federation.InitSession(ctx, FederationInitSessionParams{Token: "fed_unknown_secret_token"})
	assert.ErrorIs(t, err, ErrAuthentication, "inactive token session: %v", err)
	assert.NotContains(t, err.Error(), "fed_unknown_secret_token", "inactive token session: %v", err)

	idt, err := c.Federation.IssueIDToken(ctx, FederationIssueIDTokenParams{AgentID: agent, Audience: "https://rp", Scopes: []string{"read"}, TTL: 300})
	require.NoError(t, err)
	assert.NotEmpty(t, idt.IDToken, "id token = %v", idt)
	assert.Equal(t, idt.IDToken, idt.Token, "id token = %v", idt)
	assert.Equal(t, 300, idt.ExpiresIn, "id token = %v", idt)
	assert.False(t, idt.ExpiresAt.IsZero(), "id token = %v", idt)
	res, err = c.Federation.IntrospectToken(ctx, FederationIntrospectParams{Token: idt.IDToken})
	require.NoError(t, err, "issued token introspection: %+v", res)
	assert.True(t, res.Active, "issued token introspection: %+v, %v", res, err)
	assert.Equal(t, agent, res.AgentID, "issued token introspection: %+v, %v", res, err)
	_, err = c.Federation.IssueIDToken(ctx, FederationIssueIDTokenParams{AgentID: agent, Scopes: []string{"admin"}})
	wantCode(t, err, CodeAuthDenied)

	require.NoError(t, c.Federation.DeleteProvider(ctx, p.ID))
	provs, err = c.Federation.ListProviders(ctx, FederationListProvidersParams{})
	require.NoError(t, err, "after delete: %+v", provs)
	assert.Empty(t, provs, "after delete: %+v, %v", provs, err)
}

// siemReceiver is a loopback SIEM endpoint.
type siemReceiver struct {
	*httptest.Server
	mu      sync.Mutex
	status  int
	batches []map[string]any
	auth    []string
}

func newSIEMReceiver(t *testing.T) *siemReceiver {
	rcv := &siemReceiver{status: 200}
	rcv.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var batch map[string]any
		_ = json.NewDecoder(r.Body).Decode(&batch)
		rcv.mu.Lock()
		rcv.batches = append(rcv.batches, batch)
		rcv.auth = append(rcv.auth, r.Header.Get("Authorization"))
		status := rcv.status
		rcv.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(rcv.Close)
	return rcv
}

func TestE2EStreaming(t *testing.T) {
	ctx := context.Background()
	srv, c := newE2E(t)
	rcv := newSIEMReceiver(t)

	dest, err := c.Streaming.Create(ctx, StreamingCreateParams{Name: "loopback", DestinationType: "webhook", EndpointURL: rcv.URL,
		AuthToken: Ptr(siemSecret), BatchSize: Ptr(10), FilterEventTypes: []string{}})
	require.NoError(t, err)
	assert.NotEmpty(t, dest.ID, "destination = %v", dest)
	assert.Equal(t, rcv.URL, dest.EndpointURL, "destination = %v", dest)
	assert.Equal(t, 10, dest.BatchSize, "destination = %v", dest)
	assert.True(t, dest.IsActive, "destination = %v", dest)

	res, err := c.Streaming.Test(ctx, dest.ID)
	require.NoError(t, err, "test delivery: %v", res)
	require.Equal(t, true, res["ok"], "test delivery: %v, %v", res, err)
	rcv.mu.Lock()
	// assert, not require: the receiver's lock is held.
	if assert.Len(t, rcv.batches, 1, "receiver got %v with auth %q", rcv.batches, rcv.auth) {
		assert.Equal(t, "Bearer "+siemSecret, rcv.auth[0], "receiver got %v with auth %q", rcv.batches, rcv.auth)
		assert.Equal(t, true, rcv.batches[0]["test"], "receiver got %v with auth %q", rcv.batches, rcv.auth)
	}
	rcv.status = 500
	rcv.mu.Unlock()

	res, err = c.Streaming.Test(ctx, dest.ID)
	require.NoError(t, err, "failing destination: %v", res)
	assert.Equal(t, false, res["ok"], "failing destination: %v, %v", res, err)
	logs, err := c.Streaming.DeliveryLog(ctx, dest.ID, StreamingDeliveryLogParams{})
	require.NoError(t, err, "delivery log: %+v", logs)
	require.Len(t, logs, 2, "delivery log: %+v, %v", logs, err)
	statuses := map[string]int{}
	for _, l := range logs {
		assert.Equal(t, dest.ID, l.DestinationID, "record %+v", l)
		assert.False(t, l.DeliveredAt.IsZero(), "record %+v", l)
		assert.NotEmpty(t, l.ID, "record %+v", l)
		statuses[l.Status] = l.StatusCode
	}
	assert.Equal(t, 200, statuses["success"], "delivery statuses %v", statuses)
	assert.Equal(t, 500, statuses["failed"], "delivery statuses %v", statuses)

	upd, err := c.Streaming.Update(ctx, dest.ID, StreamingUpdateParams{IsActive: Ptr(false), BatchSize: Ptr(0)})
	require.NoError(t, err)
	assert.False(t, upd.IsActive, "updated = %v", upd)
	assert.Equal(t, 0, upd.BatchSize, "updated = %v", upd)
	assert.Equal(t, "loopback", upd.Name, "updated = %v", upd)
	got, err := c.Streaming.Get(ctx, dest.ID)
	require.NoError(t, err, "get after update: %v", got)
	assert.False(t, got.IsActive, "get after update: %v, %v", got, err)
	assert.Equal(t, 0, got.BatchSize, "get after update: %v, %v", got, err)
	list, err := c.Streaming.List(ctx, StreamingListParams{})
	require.NoError(t, err, "list: %v", list)
	assert.Len(t, list, 1, "list: %v, %v", list, err)
	require.NoError(t, c.Streaming.Delete(ctx, dest.ID))
	_, err = c.Streaming.Get(ctx, dest.ID)
	assert.ErrorIs(t, err, ErrNotFound, "get after delete: %v", err)
	// The fake is strict: every SDK request was well-formed, and none
	// carried the auth token anywhere but in its body.
	for _, r := range srv.Requests() {
		for k, v := range r.Header {
			assert.NotContains(t, strings.Join(v, ","), siemSecret, "header %s carries the token", k)
		}
	}
}

func TestE2EHostileIDs(t *testing.T) {
	ctx := context.Background()
	srv, c := newE2E(t)
	real := srv.CreateAgent("victim")
	for _, id := range []string{"../admin", "a/b", "a?b=c", "%2e%2e", "../" + real, real + "/card"} {
		srv.ClearRequests()
		_, err := c.AgentCards.Generate(ctx, id)
		assert.ErrorIs(t, err, ErrNotFound, "%q: %v", id, err)
		_, err = c.Streaming.Get(ctx, id)
		assert.ErrorIs(t, err, ErrNotFound, "%q: %v", id, err)
		err = c.Delegations.Revoke(ctx, id)
		assert.ErrorIs(t, err, ErrNotFound, "%q: %v", id, err)
		for _, r := range srv.Requests() {
			assert.Empty(t, r.RawQuery, "%q reached the fake as %s ?%s", id, r.Path, r.RawQuery)
			assert.NotContains(t, r.Path, "/../", "%q reached the fake as %s ?%s", id, r.Path, r.RawQuery)
		}
	}
	for _, id := range []string{"", ".", ".."} {
		srv.ClearRequests()
		_, err := c.AgentCards.Publish(ctx, id)
		wantCode(t, err, CodeValidation)
		n := len(srv.Requests())
		assert.Equal(t, 0, n, "%q: %d requests", id, n)
	}
}
