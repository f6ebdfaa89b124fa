package agenttrust

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// End-to-end tests of the protocol APIs against the fake gateway on
// loopback.

func TestE2EAgentCards(t *testing.T) {
	ctx := context.Background()
	srv, c := newE2E(t)
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(pub)
	pubPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	id := srv.SeedAgent(agenttrusttest.AgentSeed{Name: "carded", Capabilities: []string{"read"}, PublicKey: pubPEM})

	_, err = c.AgentCards.Get(ctx, id)
	wantCode(t, err, CodeNotFound) // not generated yet
	card, err := c.AgentCards.Generate(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if card.Name != "carded" || !strings.HasSuffix(card.PrimaryURL(), "/a2a/agents/"+id) || card.TrustScore() != 0.9 {
		t.Errorf("card %s: url %q score %v", card.Name, card.PrimaryURL(), card.TrustScore())
	}
	if got, ok := card.AgentPublicKeyPEM(); !ok || got != pubPEM {
		t.Errorf("agent key %q, %v; want %q", got, ok, pubPEM)
	}
	if _, err := c.AgentCards.Get(ctx, id); err != nil {
		t.Errorf("get after generate: %v", err)
	}

	// The public card needs no API key, but only exists once published.
	anon, err := New(WithBaseURL(srv.URL()), WithRetryPolicy(RetryPolicy{}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = anon.AgentCards.GetPublic(ctx, id)
	wantCode(t, err, CodeNotFound)
	if _, err := anon.AgentCards.Generate(ctx, id); !errors.Is(err, ErrAuthentication) {
		t.Errorf("generate without a key: %v", err)
	}
	if _, err := c.AgentCards.Publish(ctx, id); err != nil {
		t.Fatal(err)
	}
	pubCard, err := anon.AgentCards.GetPublic(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(pubCard.Signatures) == 0 {
		t.Error("published card has no signatures")
	}
	if _, err := c.AgentCards.Get(ctx, "no-such-agent"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown agent: %v", err)
	}
}

func TestE2EA2A(t *testing.T) {
	ctx := context.Background()
	srv, c := newE2E(t)
	a1, a2 := srv.CreateAgent("source"), srv.CreateAgent("target")

	task, err := c.A2A.SendTask(ctx, A2ASendTaskParams{SourceAgentID: a1, TargetAgentID: a2, Message: "summarise <q3> & report", Metadata: map[string]any{"prio": 1}})
	if err != nil {
		t.Fatal(err)
	}
	if task.ID == "" || task.Status != "pending" || task.Message != "summarise <q3> & report" || task.Metadata["prio"] != float64(1) || task.CreatedAt.IsZero() {
		t.Errorf("task = %+v", task)
	}
	got, err := c.A2A.GetTask(ctx, task.ID)
	if err != nil || got.ID != task.ID {
		t.Fatalf("get: %+v, %v", got, err)
	}
	cancelled, err := c.A2A.CancelTask(ctx, task.ID)
	if err != nil || cancelled.Status != "cancelled" {
		t.Fatalf("cancel: %+v, %v", cancelled, err)
	}
	_, err = c.A2A.CancelTask(ctx, task.ID)
	var rpc *JSONRPCError
	if !errors.As(err, &rpc) || rpc.RPCCode == 0 || rpc.RPCMessage == "" {
		t.Errorf("second cancel: %v", err)
	}
	_, err = c.A2A.GetTask(ctx, "task-missing")
	if !errors.As(err, &rpc) || !strings.Contains(rpc.Message, "not found") {
		t.Errorf("unknown task: %v", err)
	}
	_, err = c.A2A.SendTask(ctx, A2ASendTaskParams{SourceAgentID: a1, TargetAgentID: "nobody", Message: "m"})
	if !errors.As(err, &rpc) || rpc.RPCCode != -32602 {
		t.Errorf("unknown target: %v", err)
	}

	mt, err := c.A2A.SendMessage(ctx, a2, A2ASendMessageParams{Text: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	if mt.ID == "" || mt.ContextID == "" || mt.State != "completed" || mt.StatusTimestamp == "" || len(mt.History) == 0 || len(mt.Artifacts) == 0 {
		t.Errorf("message task = %+v", mt)
	}
	if !strings.Contains(string(mt.Raw), "echo: hello") {
		t.Errorf("raw %s", mt.Raw)
	}
	next, err := c.A2A.SendMessage(ctx, a2, A2ASendMessageParams{Text: "again", TaskID: mt.ID, MessageID: "m-2"})
	if err != nil || next.ID != mt.ID || len(next.History) <= len(mt.History) {
		t.Errorf("continued task: %+v, %v", next, err)
	}
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
	if err != nil {
		t.Fatal(err)
	}
	if reg.ID == "" || reg.URL != up.URL || len(reg.Capabilities) != 1 || reg.CreatedAt.IsZero() {
		t.Errorf("registered %+v", reg)
	}
	list, err := c.MCP.ListServers(ctx, MCPListServersParams{})
	if err != nil || len(list) != 1 || list[0].ID != reg.ID {
		t.Fatalf("list: %+v, %v", list, err)
	}

	raw, err := c.MCP.CallTool(ctx, reg.ID, MCPCallToolParams{AgentID: agent, SessionID: "sess-9", Method: "tools/call",
		Params: map[string]any{"name": "echo", "arguments": map[string]any{"text": "hi <there> & you"}}})
	if err != nil {
		t.Fatal(err)
	}
	type toolResult struct {
		Content []struct {
			Type, Text string
		} `json:"content"`
	}
	res, err := DecodeResult[toolResult](raw)
	if err != nil || len(res.Content) != 1 || res.Content[0].Text != "hi <there> & you" {
		t.Errorf("result %s: %+v, %v", raw, res, err)
	}
	if _, err := c.MCP.CallTool(ctx, reg.ID, MCPCallToolParams{AgentID: agent, Method: "tools/list"}); err != nil {
		t.Errorf("tools/list without params: %v", err)
	}

	_, err = c.MCP.CallTool(ctx, reg.ID, MCPCallToolParams{AgentID: agent, Method: "tools/call", Params: map[string]any{"name": "rm"}})
	var rpc *JSONRPCError
	if !errors.As(err, &rpc) || rpc.RPCCode != -32602 || rpc.RPCMessage != "unknown tool rm" || string(rpc.RPCData) != `{"tool":"rm"}` {
		t.Errorf("upstream JSON-RPC error: %v (%+v)", err, rpc)
	}
	up.mu.Lock()
	seen := append([]string(nil), up.agents...)
	up.mu.Unlock()
	if len(seen) != 3 || seen[0] != agent+"|sess-9" || seen[1] != agent+"|" {
		t.Errorf("upstream saw agents %q", seen)
	}

	_, err = c.MCP.CallTool(ctx, reg.ID, MCPCallToolParams{AgentID: "ghost", Method: "tools/list"})
	if !errors.Is(err, ErrAuthorization) {
		t.Errorf("unknown agent: %v", err)
	}
	_, err = c.MCP.CallTool(ctx, reg.ID, MCPCallToolParams{Method: "tools/list"})
	wantCode(t, err, CodeValidation)

	if err := c.MCP.RemoveServer(ctx, reg.ID); err != nil {
		t.Fatal(err)
	}
	_, err = c.MCP.CallTool(ctx, reg.ID, MCPCallToolParams{AgentID: agent, Method: "tools/list"})
	wantCode(t, err, CodeNotFound)
	if err := c.MCP.RemoveServer(ctx, reg.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("second remove: %v", err)
	}

	// call_tool is not retried after a 503, even with retries on.
	srv2, c2 := newE2E(t, WithRetryPolicy(RetryPolicy{MaxRetries: 2, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond}))
	agent2 := srv2.CreateAgent("a")
	reg2, err := c2.MCP.RegisterServer(ctx, MCPRegisterServerParams{Name: "s", URL: up.URL})
	if err != nil {
		t.Fatal(err)
	}
	srv2.InjectFault("POST /mcp/{server_id}", agenttrusttest.Fault{Status: 503, Times: 1})
	srv2.ClearRequests()
	_, err = c2.MCP.CallTool(ctx, reg2.ID, MCPCallToolParams{AgentID: agent2, Method: "tools/list"})
	wantCode(t, err, "HTTP_503")
	if n := len(srv2.Requests()); n != 1 {
		t.Errorf("call_tool sent %d times", n)
	}
}

func TestE2EDelegations(t *testing.T) {
	ctx := context.Background()
	srv, c := newE2E(t)
	boss := srv.CreateAgent("boss", "read", "write")
	worker := srv.CreateAgent("worker", "read")
	intern := srv.CreateAgent("intern")

	d, err := c.Delegations.Create(ctx, DelegationCreateParams{FromAgentID: boss, ToAgentID: worker, Scope: []string{"read", "write"}, Restrictions: map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	if d.ID == "" || d.FromAgentID != boss || len(d.Scope) != 2 || len(d.DelegationChain) != 1 ||
		d.ExpiresAt.Sub(d.CreatedAt) != time.Hour || !d.RevokedAt.IsZero() {
		t.Errorf("delegation = %+v", d)
	}
	// A delegation's scope cannot exceed the delegator's.
	_, err = c.Delegations.Create(ctx, DelegationCreateParams{FromAgentID: boss, ToAgentID: worker, Scope: []string{"admin"}})
	if e := wantCode(t, err, CodeAuthDenied); !strings.Contains(e.Message, "admin") {
		t.Errorf("over-wide scope: %v", err)
	}
	// Re-delegation narrows within the parent.
	child, err := c.Delegations.Create(ctx, DelegationCreateParams{FromAgentID: worker, ToAgentID: intern, Scope: []string{"write"}, TTLSeconds: 60, ParentDelegationID: &d.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(child.DelegationChain) != 2 || child.DelegationChain[0] != d.ID {
		t.Errorf("chain %v", child.DelegationChain)
	}
	_, err = c.Delegations.Create(ctx, DelegationCreateParams{FromAgentID: worker, ToAgentID: intern, Scope: []string{"delete"}, ParentDelegationID: &d.ID})
	wantCode(t, err, CodeAuthDenied)
	_, err = c.Delegations.Create(ctx, DelegationCreateParams{FromAgentID: worker, ToAgentID: intern, Scope: []string{"read"}, ParentDelegationID: Ptr("")})
	wantCode(t, err, CodeNotFound) // "" was sent and looked up

	list, err := c.Delegations.List(ctx, DelegationListParams{})
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %+v, %v", list, err)
	}
	sess, err := c.Delegations.InitSession(ctx, child.ID)
	if err != nil {
		t.Fatal(err)
	}
	if sess.SessionID == "" || sess.Source != SessionSourceA2A || sess.DelegationID != child.ID || sess.Mode != SessionModeReadOnly {
		t.Errorf("session = %+v", sess)
	}
	if err := c.Delegations.Revoke(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	list, _ = c.Delegations.List(ctx, DelegationListParams{})
	for _, x := range list {
		if x.RevokedAt.IsZero() {
			t.Errorf("delegation %s not revoked with its parent", x.ID)
		}
	}
	if _, err := c.Delegations.InitSession(ctx, child.ID); err == nil {
		t.Error("session on a revoked delegation")
	}
	if err := c.Delegations.Revoke(ctx, "del-none"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown revoke: %v", err)
	}
}

func TestE2EFederation(t *testing.T) {
	ctx := context.Background()
	srv, c := newE2E(t)
	agent := srv.CreateAgent("fed-agent", "read")
	const issuer = "https://idp.example"

	p, err := c.Federation.RegisterProvider(ctx, FederationRegisterProviderParams{Issuer: issuer, Name: "IdP", TrustLevel: Ptr("high")})
	if err != nil {
		t.Fatal(err)
	}
	if p.ID == "" || p.Issuer != issuer || p.TrustLevel != "high" {
		t.Errorf("provider = %+v", p)
	}
	if _, err := c.Federation.RegisterProvider(ctx, FederationRegisterProviderParams{Issuer: issuer, Name: "dup"}); err == nil {
		t.Error("duplicate issuer accepted")
	}
	provs, err := c.Federation.ListProviders(ctx, FederationListProvidersParams{})
	if err != nil || len(provs) != 1 || provs[0].ID != p.ID {
		t.Fatalf("list: %+v, %v", provs, err)
	}

	const token = "eyJhbGciOiJub25lIn0.fed.token"
	srv.AddFederatedToken(token, issuer, agent, srv.Now().Add(time.Hour))
	res, err := c.Federation.IntrospectToken(ctx, FederationIntrospectParams{Token: token, IssuerHint: issuer})
	if err != nil || !res.Active || res.AgentID != agent || res.Issuer != issuer || res.ExpiresAt.IsZero() {
		t.Fatalf("introspect: %+v, %v", res, err)
	}
	res, err = c.Federation.VerifyToken(ctx, FederationIntrospectParams{Token: "unknown"})
	if err != nil || res.Active || res.Error == "" {
		t.Errorf("unknown token: %+v, %v", res, err)
	}

	// A gateway without /introspect: the SDK falls back to /verify, which
	// answers "valid".
	srv.InjectFault("POST /api/v1/federation/tokens/introspect", agenttrusttest.Fault{Status: 404, Body: `{"error": "not found"}`})
	srv.ClearRequests()
	res, err = c.Federation.IntrospectToken(ctx, FederationIntrospectParams{Token: token})
	if err != nil || !res.Active || !res.Valid() {
		t.Fatalf("fallback: %+v, %v", res, err)
	}
	reqs := srv.Requests()
	if len(reqs) != 2 || !strings.HasSuffix(reqs[1].Path, "/tokens/verify") || string(reqs[0].Body) != string(reqs[1].Body) {
		t.Errorf("fallback requests %+v", reqs)
	}
	srv.ClearFaults()

	sess, err := c.Federation.InitSession(ctx, FederationInitSessionParams{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	if sess.Source != SessionSourceFederation || sess.ProviderID != p.ID || sess.TrustLevel != "high" || len(sess.ScopeCeiling) != 1 {
		t.Errorf("session = %+v", sess)
	}
	_, err = c.Federation.InitSession(ctx, FederationInitSessionParams{Token: "fed_unknown_secret_token"})
	if !errors.Is(err, ErrAuthentication) || strings.Contains(err.Error(), "fed_unknown_secret_token") {
		t.Errorf("inactive token session: %v", err)
	}

	idt, err := c.Federation.IssueIDToken(ctx, FederationIssueIDTokenParams{AgentID: agent, Audience: "https://rp", Scopes: []string{"read"}, TTL: 300})
	if err != nil {
		t.Fatal(err)
	}
	if idt.IDToken == "" || idt.Token != idt.IDToken || idt.ExpiresIn != 300 || idt.ExpiresAt.IsZero() {
		t.Errorf("id token = %v", idt)
	}
	if res, err := c.Federation.IntrospectToken(ctx, FederationIntrospectParams{Token: idt.IDToken}); err != nil || !res.Active || res.AgentID != agent {
		t.Errorf("issued token introspection: %+v, %v", res, err)
	}
	_, err = c.Federation.IssueIDToken(ctx, FederationIssueIDTokenParams{AgentID: agent, Scopes: []string{"admin"}})
	wantCode(t, err, CodeAuthDenied)

	if err := c.Federation.DeleteProvider(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	if provs, err := c.Federation.ListProviders(ctx, FederationListProvidersParams{}); err != nil || len(provs) != 0 {
		t.Errorf("after delete: %+v, %v", provs, err)
	}
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
	if err != nil {
		t.Fatal(err)
	}
	if dest.ID == "" || dest.EndpointURL != rcv.URL || dest.BatchSize != 10 || !dest.IsActive {
		t.Errorf("destination = %v", dest)
	}

	res, err := c.Streaming.Test(ctx, dest.ID)
	if err != nil || res["ok"] != true {
		t.Fatalf("test delivery: %v, %v", res, err)
	}
	rcv.mu.Lock()
	if len(rcv.batches) != 1 || rcv.auth[0] != "Bearer "+siemSecret || rcv.batches[0]["test"] != true {
		t.Errorf("receiver got %v with auth %q", rcv.batches, rcv.auth)
	}
	rcv.status = 500
	rcv.mu.Unlock()

	if res, err := c.Streaming.Test(ctx, dest.ID); err != nil || res["ok"] != false {
		t.Errorf("failing destination: %v, %v", res, err)
	}
	logs, err := c.Streaming.DeliveryLog(ctx, dest.ID, StreamingDeliveryLogParams{})
	if err != nil || len(logs) != 2 {
		t.Fatalf("delivery log: %+v, %v", logs, err)
	}
	statuses := map[string]int{}
	for _, l := range logs {
		if l.DestinationID != dest.ID || l.DeliveredAt.IsZero() || l.ID == "" {
			t.Errorf("record %+v", l)
		}
		statuses[l.Status] = l.StatusCode
	}
	if statuses["success"] != 200 || statuses["failed"] != 500 {
		t.Errorf("delivery statuses %v", statuses)
	}

	upd, err := c.Streaming.Update(ctx, dest.ID, StreamingUpdateParams{IsActive: Ptr(false), BatchSize: Ptr(0)})
	if err != nil {
		t.Fatal(err)
	}
	if upd.IsActive || upd.BatchSize != 0 || upd.Name != "loopback" {
		t.Errorf("updated = %v", upd)
	}
	got, err := c.Streaming.Get(ctx, dest.ID)
	if err != nil || got.IsActive || got.BatchSize != 0 {
		t.Errorf("get after update: %v, %v", got, err)
	}
	list, err := c.Streaming.List(ctx, StreamingListParams{})
	if err != nil || len(list) != 1 {
		t.Errorf("list: %v, %v", list, err)
	}
	if err := c.Streaming.Delete(ctx, dest.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Streaming.Get(ctx, dest.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("get after delete: %v", err)
	}
	// The fake is strict: every SDK request was well-formed, and none
	// carried the auth token anywhere but in its body.
	for _, r := range srv.Requests() {
		for k, v := range r.Header {
			if strings.Contains(strings.Join(v, ","), siemSecret) {
				t.Errorf("header %s carries the token", k)
			}
		}
	}
}

func TestE2EHostileIDs(t *testing.T) {
	ctx := context.Background()
	srv, c := newE2E(t)
	real := srv.CreateAgent("victim")
	for _, id := range []string{"../admin", "a/b", "a?b=c", "%2e%2e", "../" + real, real + "/card"} {
		srv.ClearRequests()
		if _, err := c.AgentCards.Generate(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("%q: %v", id, err)
		}
		if _, err := c.Streaming.Get(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("%q: %v", id, err)
		}
		if err := c.Delegations.Revoke(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("%q: %v", id, err)
		}
		for _, r := range srv.Requests() {
			if r.RawQuery != "" || strings.Contains(r.Path, "/../") {
				t.Errorf("%q reached the fake as %s ?%s", id, r.Path, r.RawQuery)
			}
		}
	}
	for _, id := range []string{"", ".", ".."} {
		srv.ClearRequests()
		_, err := c.AgentCards.Publish(ctx, id)
		wantCode(t, err, CodeValidation)
		if n := len(srv.Requests()); n != 0 {
			t.Errorf("%q: %d requests", id, n)
		}
	}
}
