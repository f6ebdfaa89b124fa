package guard

import (
	"context"
	"errors"
	"testing"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
)

// A Guard on a client with agent credentials, against a fake gateway that
// requires sender-constrained tokens. Failures while obtaining credentials
// are classified like any other cause: a missing key or a refused token
// never fails open; an unreachable or failing gateway may.

type credEnv struct {
	srv   *agenttrusttest.Server
	c     *agenttrust.Client
	ks    *agenttrust.InMemoryKeyStore
	agent *agenttrust.Agent
	creds *agenttrust.AgentCredentials
}

func newCredEnv(t *testing.T) *credEnv {
	t.Helper()
	srv := agenttrusttest.NewTestServer(t, agenttrusttest.WithSplitListeners())
	srv.SetSecuritySettings(agenttrusttest.SecuritySettings{RequireProofOfPossession: true, RequireSenderConstrainedTokens: true})
	c := fakeClient(t, srv)
	ks := agenttrust.NewInMemoryKeyStore()
	ctx := context.Background()
	agent, err := c.Agents.Create(ctx, agenttrust.AgentCreateParams{Name: "guarded", KeyStore: ks})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := c.NewAgentCredentials(agenttrust.AgentCredentialsParams{AgentID: agent.ID, KeyStore: ks, PublicKeyPEM: agent.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UseAgentCredentials(creds); err != nil {
		t.Fatal(err)
	}
	return &credEnv{srv: srv, c: c, ks: ks, agent: agent, creds: creds}
}

func (e *credEnv) guard(t *testing.T) *Guard {
	t.Helper()
	g, err := New(e.c, e.agent.ID, WithFailOpen(true), WithCheckTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close(context.Background()) })
	return g
}

func TestGuardOnCredentialedClient(t *testing.T) {
	e := newCredEnv(t)
	e.srv.DenyTool("delete_file", "no deletes")
	g := e.guard(t)
	ctx := context.Background()
	if d, err := g.Check(ctx, "read_file", ""); err != nil || !d.Allowed || d.FailedOpen {
		t.Fatalf("read_file: %+v %v", d, err)
	}
	var de *DeniedError
	if _, err := g.Check(ctx, "delete_file", ""); !errors.As(err, &de) {
		t.Fatalf("delete_file: %v", err)
	}
	for _, p := range e.srv.DPoPProofs() {
		if !p.Accepted {
			t.Errorf("refused proof %+v", p)
		}
	}
	if n := len(e.srv.DPoPProofs()); n != 2 {
		t.Errorf("%d proofs, want 2", n)
	}
}

func TestGuardCredentialFailuresNeverFailOpen(t *testing.T) {
	e := newCredEnv(t)
	g := e.guard(t)
	ctx := context.Background()

	// The key store has lost the key.
	if err := e.ks.Delete(ctx, e.agent.ID); err != nil {
		t.Fatal(err)
	}
	d, err := g.Check(ctx, "read_file", "")
	var ue *UnavailableError
	if d.Allowed || d.FailedOpen || errors.As(err, &ue) || !errors.Is(err, agenttrust.ErrKeyNotFound) {
		t.Fatalf("missing key: %+v %v", d, err)
	}
	if err := e.ks.Store(ctx, e.agent.ID, e.agent.PrivateKey); err != nil {
		t.Fatal(err)
	}

	// The gateway refuses the token.
	e.srv.InjectFault("POST /api/v1/wimse/token", agenttrusttest.Fault{Status: 403, Times: 1})
	d, err = g.Check(ctx, "read_file", "")
	var az *agenttrust.AuthorizationError
	if d.Allowed || d.FailedOpen || !errors.As(err, &az) {
		t.Fatalf("403 on the token: %+v %v", d, err)
	}
	if s := g.Stats(); s.FailedOpen != 0 || s.Unavailable != 0 {
		t.Errorf("stats %+v", s)
	}
	if len(e.srv.Checks()) != 0 {
		t.Errorf("a check was sent without credentials")
	}
}

func TestGuardUnreachableGatewayMayFailOpen(t *testing.T) {
	e := newCredEnv(t)
	g := e.guard(t)
	ctx := context.Background()
	for name, f := range map[string]agenttrusttest.Fault{
		"dropped challenge": {Drop: true},
		"token 503":         {Status: 503},
	} {
		e.srv.ClearFaults()
		e.creds.Invalidate()
		route := "POST /api/v1/agents/{agent_id}/challenge"
		if name == "token 503" {
			route = "POST /api/v1/wimse/token"
		}
		e.srv.InjectFault(route, f)
		d, err := g.Check(ctx, "read_file", "")
		if err != nil || !d.Allowed || !d.FailedOpen {
			t.Errorf("%s: %+v %v", name, d, err)
		}
	}
	if s := g.Stats(); s.FailedOpen != 2 {
		t.Errorf("stats %+v", s)
	}
	// Without fail-open the same cause is an *UnavailableError.
	strict, err := New(e.c, e.agent.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer strict.Close(ctx)
	var ue *UnavailableError
	if _, err := strict.Check(ctx, "read_file", ""); !errors.As(err, &ue) {
		t.Errorf("strict guard: %v", err)
	}
}
