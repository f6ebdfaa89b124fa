package guard

import (
	"context"
	"testing"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	require.NoError(t, err)
	creds, err := c.NewAgentCredentials(agenttrust.AgentCredentialsParams{AgentID: agent.ID, KeyStore: ks, PublicKeyPEM: agent.PublicKey})
	require.NoError(t, err)
	require.NoError(t, c.UseAgentCredentials(creds))
	return &credEnv{srv: srv, c: c, ks: ks, agent: agent, creds: creds}
}

func (e *credEnv) guard(t *testing.T) *Guard {
	t.Helper()
	g, err := New(e.c, e.agent.ID, WithFailOpen(true), WithCheckTimeout(2*time.Second))
	require.NoError(t, err)
	t.Cleanup(func() { _ = g.Close(context.Background()) })
	return g
}

func TestGuardOnCredentialedClient(t *testing.T) {
	e := newCredEnv(t)
	e.srv.DenyTool("delete_file", "no deletes")
	g := e.guard(t)
	ctx := context.Background()
	d, err := g.Check(ctx, "read_file", "")
	require.NoError(t, err, "read_file: %+v %v", d, err)
	require.True(t, d.Allowed, "read_file: %+v %v", d, err)
	require.False(t, d.FailedOpen, "read_file: %+v %v", d, err)
	var de *DeniedError
	_, err = g.Check(ctx, "delete_file", "")
	require.ErrorAs(t, err, &de, "delete_file: %v", err)
	for _, p := range e.srv.DPoPProofs() {
		assert.True(t, p.Accepted, "refused proof %+v", p)
	}
	n := len(e.srv.DPoPProofs())
	assert.EqualValues(t, 2, n, "%d proofs, want 2", n)
}

func TestGuardCredentialFailuresNeverFailOpen(t *testing.T) {
	e := newCredEnv(t)
	g := e.guard(t)
	ctx := context.Background()

	// The key store has lost the key.
	require.NoError(t, e.ks.Delete(ctx, e.agent.ID))
	d, err := g.Check(ctx, "read_file", "")
	var ue *UnavailableError
	require.False(t, d.Allowed, "missing key: %+v %v", d, err)
	require.False(t, d.FailedOpen, "missing key: %+v %v", d, err)
	require.NotErrorAs(t, err, &ue, "missing key: %+v %v", d, err)
	require.ErrorIs(t, err, agenttrust.ErrKeyNotFound, "missing key: %+v %v", d, err)
	require.NoError(t, e.ks.Store(ctx, e.agent.ID, e.agent.PrivateKey))

	// The gateway refuses the token.
	e.srv.InjectFault("POST /api/v1/wimse/token", agenttrusttest.Fault{Status: 403, Times: 1})
	d, err = g.Check(ctx, "read_file", "")
	var az *agenttrust.AuthorizationError
	require.False(t, d.Allowed, "403 on the token: %+v %v", d, err)
	require.False(t, d.FailedOpen, "403 on the token: %+v %v", d, err)
	require.ErrorAs(t, err, &az, "403 on the token: %+v %v", d, err)
	s := g.Stats()
	assert.EqualValues(t, 0, s.FailedOpen, "stats %+v", s)
	assert.EqualValues(t, 0, s.Unavailable, "stats %+v", s)
	assert.Len(t, e.srv.Checks(), 0, "a check was sent without credentials")
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
		assert.NoError(t, err, "%s: %+v %v", name, d, err)
		assert.True(t, d.Allowed, "%s: %+v %v", name, d, err)
		assert.True(t, d.FailedOpen, "%s: %+v %v", name, d, err)
	}
	s := g.Stats()
	assert.EqualValues(t, 2, s.FailedOpen, "stats %+v", s)
	// Without fail-open the same cause is an *UnavailableError.
	strict, err := New(e.c, e.agent.ID)
	require.NoError(t, err)
	defer strict.Close(ctx)
	var ue *UnavailableError
	_, err = strict.Check(ctx, "read_file", "")
	assert.ErrorAs(t, err, &ue, "strict guard: %v", err)
}
