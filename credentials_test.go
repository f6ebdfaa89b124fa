package agenttrust

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const checkRoute = "POST /api/v1/agenttrust/check"

// identityEnv is a fake gateway in the split layout that requires proof of
// possession and sender-constrained tokens, a client on the fake's clock,
// and an agent whose key is in an in-memory store.
type identityEnv struct {
	srv   *agenttrusttest.Server
	c     *Client
	ks    *InMemoryKeyStore
	agent *Agent
	creds *AgentCredentials
}

func newIdentityEnv(t *testing.T, opts ...Option) *identityEnv {
	t.Helper()
	srv := agenttrusttest.NewTestServer(t, agenttrusttest.WithSplitListeners())
	srv.SetSecuritySettings(agenttrusttest.SecuritySettings{RequireProofOfPossession: true, RequireSenderConstrainedTokens: true})
	c := fakeClient(t, srv, append([]Option{withNow(srv.Now),
		WithRetryPolicy(RetryPolicy{MaxRetries: 2, InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})}, opts...)...)
	var err error
	e := &identityEnv{srv: srv, c: c, ks: NewInMemoryKeyStore()}
	e.agent, err = c.Agents.Create(ctxT(t), AgentCreateParams{Name: "identity-bot", Capabilities: []string{"read"}, KeyStore: e.ks})
	require.NoError(t, err)
	e.creds, err = c.NewAgentCredentials(AgentCredentialsParams{AgentID: e.agent.ID, KeyStore: e.ks, PublicKeyPEM: e.agent.PublicKey})
	require.NoError(t, err)
	require.NoError(t, c.UseAgentCredentials(e.creds))
	return e
}

func (e *identityEnv) check(ctx context.Context) (*ActionCheckResult, error) {
	return e.c.Actions.Check(ctx, ActionCheckParams{AgentID: e.agent.ID, ToolName: "read_invoice"})
}

// checkRequests returns the check requests the fake received.
func (e *identityEnv) checkRequests() []agenttrusttest.RecordedRequest {
	var out []agenttrusttest.RecordedRequest
	for _, r := range e.srv.Requests() {
		if r.Path == "/api/v1/agenttrust/check" {
			out = append(out, r)
		}
	}
	return out
}

func TestCredentialsSenderConstrainedCheck(t *testing.T) {
	e := newIdentityEnv(t)
	// Without credentials the fake refuses the check: the enforcement is real.
	plain, _ := New(WithBaseURL(e.srv.URL()), WithAuthURL(e.srv.AuthURL()), WithAPIKey(e.srv.APIKey()))
	_, err := plain.Actions.Check(ctxT(t), ActionCheckParams{AgentID: e.agent.ID, ToolName: "x"})
	require.ErrorIs(t, err, ErrAuthentication, "check without credentials: %v", err)
	e.srv.ClearRequests()
	for i := 0; i < 3; i++ {
		res, err := e.check(ctxT(t))
		require.NoError(t, err, "check %d: %v", i, res)
		require.True(t, res.Allowed, "check %d: %v %v", i, res, err)
	}
	n := len(e.srv.WIMSETokens())
	assert.Equal(t, 1, n, "%d WIMSE tokens issued, want 1 (cached)", n)
	pops := e.srv.PoPProofs()
	require.Len(t, pops, 1, "proofs of possession: %+v", pops)
	assert.True(t, pops[0].Accepted, "proofs of possession: %+v", pops)
	proofs := e.srv.DPoPProofs()
	jtis := map[string]bool{}
	for _, p := range proofs {
		// htu is the auth listener that received the check, not the gateway.
		assert.True(t, p.Accepted, "proof %+v", p)
		assert.Equal(t, e.srv.AuthURL()+"/api/v1/agenttrust/check", p.HTU, "proof %+v", p)
		assert.Equal(t, "POST", p.HTM, "proof %+v", p)
		assert.False(t, jtis[p.JTI], "proof %+v", p)
		jtis[p.JTI] = true
	}
	assert.Len(t, proofs, 3, "%d proofs, want 3", len(proofs))
	// Only the check carries the credentials; the API key stays.
	for _, r := range e.srv.Requests() {
		isCheck := r.Path == "/api/v1/agenttrust/check"
		hasCreds := r.Header.Get("Authorization") != "" || r.Header.Get("DPoP") != ""
		assert.Equal(t, hasCreds, isCheck, "%s %s: credentials %v", r.Method, r.Path, hasCreds)
		assert.Equal(t, e.srv.APIKey(), r.Header.Get("X-API-Key"), "%s %s: credentials %v", r.Method, r.Path, hasCreds)
	}
	// Other calls never carry them.
	e.srv.ClearRequests()
	_, err = e.c.Agents.Get(ctxT(t), e.agent.ID)
	require.NoError(t, err)
	_, err = e.c.Tokens.Issue(ctxT(t), TokenIssueParams{AgentID: e.agent.ID, Scopes: []string{"read"}})
	require.NoError(t, err)
	for _, r := range e.srv.Requests() {
		assert.Empty(t, r.Header.Get("Authorization"), "%s %s carries credentials", r.Method, r.Path)
		assert.Empty(t, r.Header.Get("DPoP"), "%s %s carries credentials", r.Method, r.Path)
	}
	// Removing them makes checks plain again.
	require.NoError(t, e.c.UseAgentCredentials(nil))
	_, err = e.check(ctxT(t))
	assert.ErrorIs(t, err, ErrAuthentication, "after removal: %v", err)
}

func TestCredentialsOneRefreshForConcurrentChecks(t *testing.T) {
	e := newIdentityEnv(t)
	// Slow the token endpoint so that every goroutine arrives during the
	// refresh.
	e.srv.InjectFault("POST /api/v1/wimse/token", agenttrusttest.Fault{Latency: 100 * time.Millisecond, Times: 1})
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := e.check(ctxT(t))
			if assert.NoError(t, err, "check") {
				assert.True(t, res.Allowed, "check")
			}
		}()
	}
	wg.Wait()
	n := len(e.srv.WIMSETokens())
	assert.Equal(t, 1, n, "%d WIMSE tokens for 100 concurrent checks, want 1", n)
	challenges := 0
	for _, r := range e.srv.Requests() {
		if strings.HasSuffix(r.Path, "/challenge") {
			challenges++
		}
	}
	assert.Equal(t, 1, challenges, "%d challenges, want 1", challenges)
	jtis := map[string]bool{}
	for _, p := range e.srv.DPoPProofs() {
		assert.True(t, p.Accepted, "proof %+v", p)
		assert.False(t, jtis[p.JTI], "proof %+v", p)
		jtis[p.JTI] = true
	}
	assert.Len(t, jtis, 100, "%d distinct accepted proofs, want 100", len(jtis))
}

func TestCredentialsRefreshAtThreshold(t *testing.T) {
	e := newIdentityEnv(t)
	_, err := e.check(ctxT(t))
	require.NoError(t, err)
	toks := e.srv.WIMSETokens()
	require.Len(t, toks, 1, "%d tokens", len(toks))
	// The fake's clock drives the client's: one second before the 60 s
	// margin the token is still used, at the margin it is replaced.
	e.srv.Advance(toks[0].ExpiresAt.Sub(e.srv.Now()) - 61*time.Second)
	_, err = e.check(ctxT(t))
	require.NoError(t, err)
	n := len(e.srv.WIMSETokens())
	require.Equal(t, 1, n, "refreshed %d s before the margin", 1)
	e.srv.Advance(time.Second)
	_, err = e.check(ctxT(t))
	require.NoError(t, err)
	n = len(e.srv.WIMSETokens())
	require.Equal(t, 2, n, "%d tokens at the threshold, want 2", n)
	tok, err := e.creds.Token(ctxT(t))
	require.NoError(t, err, "Token() is not the new token")
	assert.Equal(t, e.srv.WIMSETokens()[1].Token, tok, "Token() is not the new token: %v", err)
}

func TestCredentialsRecoverFromEarlyRevocation(t *testing.T) {
	e := newIdentityEnv(t)
	_, err := e.check(ctxT(t))
	require.NoError(t, err)
	n := e.srv.RevokeWIMSETokens(e.agent.ID)
	require.Equal(t, 1, n, "revoked %d", n)
	e.srv.ClearRequests()
	res, err := e.check(ctxT(t))
	require.NoError(t, err, "check after revocation: %v", res)
	require.True(t, res.Allowed, "check after revocation: %v %v", res, err)
	checks := e.checkRequests()
	require.Len(t, checks, 2, "want one retry with a new token and proof, got %d checks", len(checks))
	require.NotEqual(t, checks[1].Header.Get("DPoP"), checks[0].Header.Get("DPoP"), "want one retry with a new token and proof, got %d checks", len(checks))
	require.NotEqual(t, checks[1].Header.Get("Authorization"), checks[0].Header.Get("Authorization"), "want one retry with a new token and proof, got %d checks", len(checks))
	rej := e.srv.IdentityRejections()
	require.Len(t, rej, 1, "rejections %+v", rej)
	assert.Equal(t, agenttrusttest.ReasonTokenRevoked, rej[0].Reason, "rejections %+v", rej)
	// Only one retry: a check refused twice returns the 401.
	e.srv.InjectFault(checkRoute, agenttrusttest.Fault{Status: 401, Times: 5})
	e.srv.ClearRequests()
	_, err = e.check(ctxT(t))
	assert.ErrorIs(t, err, ErrAuthentication, "refused twice: %v", err)
	n = len(e.checkRequests())
	assert.Equal(t, 2, n, "%d check requests, want 2", n)
}

func TestCredentialsRetryCarriesNewProof(t *testing.T) {
	var logs bytes.Buffer
	e := newIdentityEnv(t, WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	e.srv.InjectFault(checkRoute, agenttrusttest.Fault{Status: 503, Times: 1})
	res, err := e.check(ctxT(t))
	require.NoError(t, err, "%v", res)
	require.True(t, res.Allowed, "%v %v", res, err)
	checks := e.checkRequests()
	require.Len(t, checks, 2, "%d check requests, want 2", len(checks))
	p1, p2 := checks[0].Header.Get("DPoP"), checks[1].Header.Get("DPoP")
	assert.NotEmpty(t, p1, "the retry after 503 reused the proof")
	assert.NotEqual(t, p2, p1, "the retry after 503 reused the proof")
	assert.Equal(t, checks[1].Header.Get("Authorization"), checks[0].Header.Get("Authorization"), "the token changed on a transport retry")
	assert.Empty(t, e.srv.IdentityRejections(), "rejections %+v", e.srv.IdentityRejections())
	tok := e.srv.WIMSETokens()[0].Token
	require.Contains(t, logs.String(), "retrying", "no retry logged: %s", logs.String())
	for _, s := range []string{tok, p1, p2, e.agent.PrivateKey} {
		assert.NotContains(t, logs.String(), s, "log reveals a secret")
	}
	assertNoSecret(t, "AgentCredentials", e.creds, tok)
	var out bytes.Buffer
	slog.New(slog.NewJSONHandler(&out, nil)).Info("creds", "c", e.creds)
	assert.NotContains(t, out.String(), tok, "slog: %s", out.String())
	assert.Contains(t, out.String(), e.agent.ID, "slog: %s", out.String())
}

func TestCredentialsCancelledWaiterReturnsAtOnce(t *testing.T) {
	e := newIdentityEnv(t)
	e.srv.InjectFault("POST /api/v1/wimse/token", agenttrusttest.Fault{Latency: 400 * time.Millisecond, Times: 1})
	done := make(chan error, 1)
	go func() { _, err := e.creds.Token(context.Background()); done <- err }()
	require.Eventually(t, func() bool { return e.creds.refreshes.Waiters(struct{}{}) == 1 }, 5*time.Second, time.Millisecond,
		"the refresh is in flight")
	ctx, cancel := context.WithCancel(context.Background())
	cancelledAt := make(chan time.Time, 1)
	go func() {
		// Cancel once this test's waiter has joined the refresh.
		assert.Eventually(t, func() bool { return e.creds.refreshes.Waiters(struct{}{}) == 2 }, 5*time.Second, time.Millisecond,
			"the second waiter joins the refresh")
		cancelledAt <- time.Now()
		cancel()
	}()
	_, err := e.creds.Token(ctx)
	require.ErrorIs(t, err, context.Canceled, "cancelled waiter: %v", err)
	require.ErrorIs(t, err, ErrNetwork, "cancelled waiter: %v", err)
	d := time.Since(<-cancelledAt)
	assert.LessOrEqual(t, d, 200*time.Millisecond, "cancelled waiter returned %v after its context ended", d)
	require.NoError(t, <-done, "the other waiter")
	n := len(e.srv.WIMSETokens())
	assert.Equal(t, 1, n, "%d tokens", n)
	// A caller whose context is already done does not start a refresh.
	e.creds.Invalidate()
	_, err = e.creds.Token(ctx)
	assert.ErrorIs(t, err, context.Canceled, "done ctx: %v", err)
	n = len(e.srv.WIMSETokens())
	assert.Equal(t, 1, n, "a done context started a refresh")
}

func TestCredentialFailuresSendNoCheck(t *testing.T) {
	e := newIdentityEnv(t)
	// A key store without the key: typed error, no check sent, not cached.
	require.NoError(t, e.ks.Delete(ctxT(t), e.agent.ID))
	e.srv.ClearRequests()
	_, err := e.check(ctxT(t))
	require.ErrorIs(t, err, ErrKeyNotFound, "missing key: %v", err)
	require.ErrorIs(t, err, ErrKeyStore, "missing key: %v", err)
	require.NotErrorIs(t, err, ErrNetwork, "missing key: %v", err)
	n := len(e.checkRequests())
	assert.Equal(t, 0, n, "%d check requests after a credential failure", n)
	require.NoError(t, e.ks.Store(ctxT(t), e.agent.ID, e.agent.PrivateKey))
	_, err = e.check(ctxT(t))
	require.NoError(t, err, "after restoring the key")
	// A 403 on the token request surfaces as the check's error.
	e.creds.Invalidate()
	e.srv.InjectFault("POST /api/v1/wimse/token", agenttrusttest.Fault{Status: 403, Times: 1})
	e.srv.ClearRequests()
	var ae *AuthorizationError
	_, err = e.check(ctxT(t))
	require.ErrorAs(t, err, &ae, "403 on token: %v", err)
	n = len(e.checkRequests())
	assert.Equal(t, 0, n, "%d check requests after a refused token", n)
	_, err = e.check(ctxT(t))
	require.NoError(t, err, "not retried after the failure")
	// A challenge reply without a nonce is never signed.
	e.creds.Invalidate()
	e.srv.InjectFault("POST /api/v1/agents/{agent_id}/challenge", agenttrusttest.Fault{Status: 200, Body: `{"nonce":""}`, Times: 1})
	before := len(e.srv.PoPProofs())
	_, err = e.check(ctxT(t))
	wantDecode(t, err)
	assert.Len(t, e.srv.PoPProofs(), before, "a proof was sent for an empty nonce")
}

func TestCredentialsKeyPairCheckedAtFirstRefresh(t *testing.T) {
	e := newIdentityEnv(t)
	other, err := GenerateAgentKey()
	require.NoError(t, err)
	bad, err := e.c.NewAgentCredentials(AgentCredentialsParams{AgentID: e.agent.ID, KeyStore: e.ks, PublicKeyPEM: other.PublicKeyPEM})
	require.NoError(t, err)
	_, err = bad.Token(ctxT(t))
	wantValidation(t, err, "mismatched key pair")
	n := len(e.srv.PoPProofs())
	assert.Equal(t, 0, n, "%d proofs sent with a mismatched key pair", n)
}

func TestCredentialsValidation(t *testing.T) {
	c := newTestClient(t, "http://127.0.0.1:1")
	other := newTestClient(t, "http://127.0.0.1:1")
	ks := NewInMemoryKeyStore()
	for name, p := range map[string]AgentCredentialsParams{
		"no agent":    {KeyStore: ks, PublicKeyPEM: vecPubPEM},
		"no store":    {AgentID: "a1", PublicKeyPEM: vecPubPEM},
		"bad key":     {AgentID: "a1", KeyStore: ks, PublicKeyPEM: "x"},
		"private key": {AgentID: "a1", KeyStore: ks, PublicKeyPEM: vecPrivPEM},
	} {
		_, err := c.NewAgentCredentials(p)
		wantValidation(t, err, name)
	}
	ac, err := c.NewAgentCredentials(AgentCredentialsParams{AgentID: "a1", KeyStore: ks, PublicKeyPEM: vecPubPEM})
	require.NoError(t, err)
	wantValidation(t, other.UseAgentCredentials(ac), "another client")
	assert.Equal(t, "a1", ac.AgentID(), "%v", ac.AgentID())
	// Credentials not made by NewAgentCredentials: an error, not a panic.
	for name, z := range map[string]*AgentCredentials{"nil": nil, "zero": {}} {
		_, err := z.Token(context.Background())
		wantValidation(t, err, name+" credentials")
		z.Invalidate()
	}
	wantValidation(t, c.UseAgentCredentials(&AgentCredentials{}), "zero credentials installed")
	assert.NoError(t, c.UseAgentCredentials(nil), "nil removes the credentials")
}

func TestCredentialedCheckErrorsHideSecrets(t *testing.T) {
	// A server that echoes the credentials it received in its error.
	srv := newRecServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/challenge"):
			_, _ = w.Write([]byte(`{"nonce":"n-1"}`))
		case r.URL.Path == "/api/v1/wimse/token":
			_, _ = w.Write([]byte(`{"token":"eyJ.wimse-secret-token.sig","expires_at":"2099-01-01T00:00:00Z"}`))
		default:
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"bad ` + r.Header.Get("Authorization") + ` with ` + r.Header.Get("DPoP") + `"}`))
		}
	})
	c := newTestClient(t, srv.URL)
	ks := NewInMemoryKeyStore()
	require.NoError(t, ks.Store(ctxT(t), "a1", vecPrivPEM))
	ac, err := c.NewAgentCredentials(AgentCredentialsParams{AgentID: "a1", KeyStore: ks, PublicKeyPEM: vecPubPEM})
	require.NoError(t, err)
	require.NoError(t, c.UseAgentCredentials(ac))
	_, err = c.Actions.Check(ctxT(t), ActionCheckParams{AgentID: "a1", ToolName: "x"})
	var ve *ValidationError
	require.ErrorAs(t, err, &ve, "err = %v", err)
	require.Equal(t, 400, ve.Status, "err = %v", err)
	var proof string
	for _, r := range srv.requests() {
		if p := r.Header.Get("Dpop"); p != "" {
			proof = p
		}
	}
	require.NotEmpty(t, proof, "no proof sent")
	for _, s := range []string{"wimse-secret-token", proof[:40], proof[len(proof)-40:]} {
		assert.NotContains(t, err.Error(), s, "error reveals %q: %v %v", s, err, ve.Details)
		assert.NotContains(t, fmt.Sprint(ve.Details), s, "error reveals %q: %v %v", s, err, ve.Details)
	}
}

// credServer issues WIMSE tokens with the given expires_at and counts them.
func credServer(t *testing.T, expiresAt func() string) (*recServer, func() int) {
	var mu sync.Mutex
	issued := 0
	srv := newRecServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/challenge"):
			_, _ = w.Write([]byte(`{"nonce":"n-1"}`))
		case r.URL.Path == "/api/v1/wimse/token":
			mu.Lock()
			issued++
			n := issued
			mu.Unlock()
			_, _ = fmt.Fprintf(w, `{"token":"tok-%d","expires_at":%q}`, n, expiresAt())
		default:
			_, _ = w.Write([]byte(`{"allowed":true}`))
		}
	})
	return srv, func() int { mu.Lock(); defer mu.Unlock(); return issued }
}

func TestCredentialsExpiryRules(t *testing.T) {
	clk := newFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	ks := NewInMemoryKeyStore()
	require.NoError(t, ks.Store(ctxT(t), "a1", vecPrivPEM))
	newCreds := func(srv *recServer) *AgentCredentials {
		c := newTestClient(t, srv.URL, withNow(clk.Now))
		ac, err := c.NewAgentCredentials(AgentCredentialsParams{AgentID: "a1", KeyStore: ks, PublicKeyPEM: vecPubPEM,
			Audience: []string{"svc"}, TTLSeconds: ptr(120)})
		require.NoError(t, err)
		return ac
	}

	// A token expiring in 10 s is inside the margin: re-issued on every call.
	srv, issued := credServer(t, func() string { return clk.Now().Add(10 * time.Second).Format(time.RFC3339) })
	ac := newCreds(srv)
	for i := 1; i <= 3; i++ {
		tok, err := ac.Token(ctxT(t))
		require.NoError(t, err, "call %d: %q", i, tok)
		require.Equal(t, fmt.Sprintf("tok-%d", i), tok, "call %d: %q %v", i, tok, err)
	}
	assert.Equal(t, 3, issued(), "%d tokens issued for 3 calls inside the margin, want 3", issued())
	// The refresh sends the audience and TTL, and neither service_name nor
	// environment.
	for _, r := range srv.requests() {
		if r.Path == "/api/v1/wimse/token" {
			m := decodeMap(t, r.Body)
			assert.Equal(t, "120", fmt.Sprint(m["ttl_seconds"]), "token body %s", r.Body)
			assert.Equal(t, "[svc]", fmt.Sprint(m["audience"]), "token body %s", r.Body)
			assert.Nil(t, m["service_name"], "token body %s", r.Body)
			assert.Nil(t, m["environment"], "token body %s", r.Body)
		}
	}

	// No expiry, or an unreadable one: 300 s, so cached for 240 s.
	for _, exp := range []string{"", "in a while"} {
		exp := exp
		srv, issued = credServer(t, func() string { return exp })
		ac = newCreds(srv)
		for _, step := range []time.Duration{0, 239 * time.Second} {
			clk.Advance(step)
			_, err := ac.Token(ctxT(t))
			require.NoError(t, err)
		}
		assert.Equal(t, 1, issued(), "expires_at %q: %d tokens within 239 s, want 1", exp, issued())
		clk.Advance(time.Second)
		tok, _ := ac.Token(ctxT(t))
		assert.Equal(t, "tok-2", tok, "expires_at %q: not refreshed at 240 s", exp)
		assert.Equal(t, 2, issued(), "expires_at %q: not refreshed at 240 s", exp)
	}

	// A zone-less expiry is UTC: 90 s away, so cached; 60 s away, refreshed.
	srv, issued = credServer(t, func() string { return clk.Now().UTC().Add(90 * time.Second).Format("2006-01-02T15:04:05") })
	ac = newCreds(srv)
	_, err := ac.Token(ctxT(t))
	require.NoError(t, err)
	clk.Advance(29 * time.Second)
	_, _ = ac.Token(ctxT(t))
	assert.Equal(t, 1, issued(), "zone-less expiry: %d tokens at 61 s before expiry", issued())
	clk.Advance(time.Second)
	_, _ = ac.Token(ctxT(t))
	assert.Equal(t, 2, issued(), "zone-less expiry: %d tokens at 60 s before expiry", issued())
}

// hangingSigner is a key store whose proof-of-possession signatures never
// come, like a keyring waiting on a prompt nobody answers: Sign returns only
// when its context ends (or the test does).
type hangingSigner struct {
	KeyStore
	release chan struct{}
}

func (h hangingSigner) Sign(ctx context.Context, agentID string, data []byte) ([]byte, error) {
	if !bytes.HasPrefix(data, []byte("pop-v1:")) {
		return h.KeyStore.Sign(ctx, agentID, data)
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-h.release:
		return nil, errors.New("test over")
	}
}

// A refresh is bounded by the client timeout as a whole, key store
// included: it is detached from the callers' cancellation, so without that
// bound a caller without a deadline would wait forever.
func TestCredentialsRefreshBoundedByClientTimeout(t *testing.T) {
	e := newIdentityEnv(t, WithTimeout(300*time.Millisecond))
	hang := hangingSigner{KeyStore: e.ks, release: make(chan struct{})}
	t.Cleanup(func() { close(hang.release) })
	creds, err := e.c.NewAgentCredentials(AgentCredentialsParams{AgentID: e.agent.ID, KeyStore: hang, PublicKeyPEM: e.agent.PublicKey})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { _, err := creds.Token(context.Background()); done <- err }()
	select {
	case err := <-done:
		require.ErrorIs(t, err, ErrKeyStore, "got %v, want a key store error wrapping the deadline", err)
		require.ErrorIs(t, err, context.DeadlineExceeded, "got %v, want a key store error wrapping the deadline", err)
	case <-time.After(5 * time.Second):
		require.FailNow(t, "the refresh outlived the client timeout")
	}
}
