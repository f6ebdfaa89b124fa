package agenttrust

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/agenttrustid/agenttrust-go/internal/flight"
)

// credentialsRefreshMargin is how long before its expiry a cached WIMSE
// token is replaced.
const credentialsRefreshMargin = 60 * time.Second

// AgentCredentialsParams are the arguments of Client.NewAgentCredentials.
type AgentCredentialsParams struct {
	// AgentID is the agent the credentials act for; required.
	AgentID string
	// KeyStore holds the agent's private key; required.
	KeyStore KeyStore
	// PublicKeyPEM is the agent's registered public key, a PKIX Ed25519
	// PEM; required. Before its first token request the credentials check
	// that the key store's signature verifies under it.
	PublicKeyPEM string
	// Audience is sent with each token request when non-empty.
	Audience []string
	// TTLSeconds is sent with each token request when non-nil.
	TTLSeconds *int
}

// AgentCredentials make an agent's action checks sender-constrained: once
// installed with Client.UseAgentCredentials, every Actions.Check carries
// "Authorization: Bearer <WIMSE token>" and a "DPoP" proof minted for that
// very request, in addition to the API key. No other call uses them.
//
// The WIMSE token is obtained with a proof of possession and cached; it is
// replaced 60 s before its expiry (an expiry the gateway does not state, or
// states unreadably, counts as 5 minutes; one without a zone is UTC).
// Concurrent callers share one refresh, and each stops waiting when its own
// context ends while the refresh goes on for the others. A failed refresh is
// not cached: the next call tries again. When a credentialed check is
// answered 401 (the token was revoked early, say), the token is dropped and
// the check is retried once with a new token and proof.
//
// AgentCredentials belong to the client that created them and are safe for
// concurrent use. Printing or logging them never shows the token.
type AgentCredentials struct {
	client   *Client
	agentID  string
	ks       KeyStore
	pub      ed25519.PublicKey
	audience []string
	ttl      *int
	dpop     *DPoPKey

	cur      atomic.Pointer[credToken] // the cached token; nil: none
	verified atomic.Bool               // the key pair has been checked

	// refreshes collapses concurrent refreshes into one, detached from the
	// callers' cancellation and bounded by the client timeout; each caller
	// waits on its own ctx.
	refreshes flight.Group[struct{}, *credToken]
}

type credToken struct {
	token     string
	refreshAt time.Time // expiry minus the refresh margin
	bearer    []string  // the Authorization header value, shared read-only
	ath       []byte    // the DPoP ath claim of token, computed once
}

// NewAgentCredentials returns credentials for one agent, bound to c: its
// WIMSE calls and API key are c's, and only c may install them. Invalid
// params are a *ValidationError; nothing is sent until the first use.
func (c *Client) NewAgentCredentials(p AgentCredentialsParams) (*AgentCredentials, error) {
	if p.AgentID == "" {
		return nil, validationErr("agent credentials: missing required agent_id")
	}
	if missingKeyStore(p.KeyStore) {
		return nil, validationErr("agent credentials: missing required key store")
	}
	pub, err := ParsePublicKeyPEM(p.PublicKeyPEM)
	if err != nil {
		return nil, err
	}
	dk, err := NewDPoPKeyWithKeyStore(p.KeyStore, p.AgentID, p.PublicKeyPEM)
	if err != nil {
		return nil, err
	}
	var ttl *int
	if p.TTLSeconds != nil {
		v := *p.TTLSeconds
		ttl = &v
	}
	ac := &AgentCredentials{
		client: c, agentID: p.AgentID, ks: p.KeyStore, pub: pub,
		audience: append([]string(nil), p.Audience...), ttl: ttl, dpop: dk,
	}
	ac.refreshes.Timeout = c.timeout
	ac.refreshes.WaitErr = waitErr
	return ac, nil
}

// UseAgentCredentials installs ac on c, so that Actions.Check sends them;
// nil removes them. Credentials made by another client are a
// *ValidationError.
func (c *Client) UseAgentCredentials(ac *AgentCredentials) error {
	if ac != nil && ac.client != c {
		return validationErr("agent credentials belong to another client")
	}
	c.creds.Store(ac)
	return nil
}

// AgentID returns the agent the credentials act for.
func (ac *AgentCredentials) AgentID() string { return ac.agentID }

// Token returns the cached WIMSE token, refreshing it first when it expires
// within 60 s. When ctx ends while a refresh is in progress, Token returns
// at once with a *NetworkError wrapping ctx's error; the refresh completes
// for the other callers. Credentials not made by Client.NewAgentCredentials
// (nil or a zero value) are a *ValidationError.
func (ac *AgentCredentials) Token(ctx context.Context) (string, error) {
	if ac == nil || ac.client == nil {
		return "", validationErr("agent credentials: not made by Client.NewAgentCredentials")
	}
	t, _, err := ac.token(ctx)
	if err != nil {
		return "", err
	}
	return t.token, nil
}

// Invalidate drops the cached token; the next use obtains a new one. On
// nil credentials it does nothing.
func (ac *AgentCredentials) Invalidate() {
	if ac != nil {
		ac.cur.Store(nil)
	}
}

// token returns the token to use and the time it was found fresh at. The
// fast path is one atomic load and one clock reading; after a refresh the
// clock is read again.
func (ac *AgentCredentials) token(ctx context.Context) (*credToken, time.Time, error) {
	now := ac.client.now()
	if t := ac.cur.Load(); t != nil && now.Before(t.refreshAt) {
		return t, now, nil
	}
	t, err := ac.refresh(ctx)
	return t, ac.client.now(), err
}

// refresh joins the refresh in progress or starts one. The refresh runs on
// a context that keeps ctx's values but not its cancellation, bounded by
// the client timeout, so that one caller giving up does not fail the
// others.
func (ac *AgentCredentials) refresh(ctx context.Context) (*credToken, error) {
	if ctx == nil {
		return nil, validationErr("nil context")
	}
	return ac.refreshes.Do(ctx, struct{}{}, ac.cached, ac.run)
}

// cached returns the cached token while it needs no refresh.
func (ac *AgentCredentials) cached() (*credToken, bool) {
	t := ac.cur.Load()
	return t, t != nil && ac.client.now().Before(t.refreshAt)
}

func waitErr(err error) error {
	return NewError(CodeNetwork, "Network error: waiting for agent credentials: "+err.Error(), err)
}

// run is one refresh: it stores the new token before the refresh ends, so
// that a caller arriving after sees it.
func (ac *AgentCredentials) run(ctx context.Context) (*credToken, error) {
	tok, err := ac.fetch(ctx)
	if err == nil {
		ac.cur.Store(tok)
	}
	return tok, err
}

func (ac *AgentCredentials) fetch(ctx context.Context) (*credToken, error) {
	var check ed25519.PublicKey
	if !ac.verified.Load() {
		check = ac.pub
	}
	t, err := ac.client.WIMSE.issueWithProof(ctx, WIMSEProofParams{
		AgentID: ac.agentID, KeyStore: ac.ks, TTLSeconds: ac.ttl, Audience: ac.audience,
	}, check)
	if err != nil {
		return nil, err
	}
	ac.verified.Store(true)
	exp := wimseExpiry(t.ExpiresAt, ac.client.now())
	return &credToken{token: t.Token, refreshAt: exp.Add(-credentialsRefreshMargin),
		bearer: []string{"Bearer " + t.Token}, ath: appendATH(make([]byte, 0, athLen), t.Token)}, nil
}

// drop forgets t if it is still the cached token, so that concurrent
// callers who saw the same rejection cause one refresh, not one each.
func (ac *AgentCredentials) drop(t *credToken) { ac.cur.CompareAndSwap(t, nil) }

// credentialedCall is one Actions.Check request with credentials: it adds
// fresh headers to every attempt and remembers the token the last one
// used.
type credentialedCall struct {
	ac          *AgentCredentials
	used        *credToken
	sent        []string  // the tokens and proofs sent, for redaction
	first       [2]string // sent's storage until a retry
	method, url string    // where the attempts go
}

func (cc *credentialedCall) target(method, url string) { cc.method, cc.url = method, url }

// BeforeAttempt adds Authorization and a DPoP proof for the URL actually
// sent. The clock reading that found the token fresh is the proof's iat.
func (cc *credentialedCall) BeforeAttempt(ctx context.Context, h http.Header) error {
	ac := cc.ac
	t, now, err := ac.token(ctx)
	if err != nil {
		return err
	}
	proof, err := ac.dpop.mintATH(ctx, now, cc.method, cc.url, t.ath)
	if err != nil {
		return err
	}
	cc.used = t
	// The secrets' storage also holds the DPoP header value, the last of
	// them; a later append never writes into that value.
	if cc.sent == nil {
		cc.sent = cc.first[:0]
	}
	s := append(cc.sent, t.token, proof)
	cc.sent = s
	h["Authorization"] = t.bearer
	h["Dpop"] = s[len(s)-1 : len(s) : len(s)]
	return nil
}

func (cc *credentialedCall) secrets() []string { return cc.sent }

// String describes the credentials without the token.
func (ac *AgentCredentials) String() string {
	state := "none"
	if t := ac.cur.Load(); t != nil {
		state = "cached until " + t.refreshAt.UTC().Format(time.RFC3339)
	}
	return "agenttrust.AgentCredentials{agent: " + strconv.Quote(ac.agentID) + ", token: " + state + "}"
}

// GoString is String.
func (ac *AgentCredentials) GoString() string { return ac.String() }

// Format prints String for every verb.
func (ac *AgentCredentials) Format(f fmt.State, verb rune) { formatRedacted(f, verb, ac, ac) }

// LogValue hides the token from log/slog.
func (ac *AgentCredentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("agent_id", ac.agentID), secretAttr("token", ac.cur.Load() != nil))
}
