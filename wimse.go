package agenttrust

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// WIMSEService issues and verifies WIMSE workload tokens, optionally with a
// signed proof that the agent holds its private key (gateway).
type WIMSEService service

// WIMSETokenResponse is an issued WIMSE workload token. Printing it with any
// fmt verb, or logging it with log/slog, never shows the token.
type WIMSETokenResponse struct {
	// Token is the workload token, a JWT.
	Token string `json:"token"`
	// WorkloadID is e.g. "spiffe://ati/agent/a1".
	WorkloadID string `json:"workload_id"`
	// TrustDomain is e.g. "agenttrust.id".
	TrustDomain string `json:"trust_domain"`
	// ExpiresAt is the gateway's expiry, kept as sent.
	ExpiresAt string `json:"expires_at"`
}

// String describes the token response without the token.
func (r WIMSETokenResponse) String() string {
	return "agenttrust.WIMSETokenResponse{token: " + redactedSecret(r.Token) + ", workload_id: " +
		strconv.Quote(r.WorkloadID) + ", trust_domain: " + strconv.Quote(r.TrustDomain) +
		", expires_at: " + strconv.Quote(r.ExpiresAt) + "}"
}

// GoString is String, so that %#v hides the token too.
func (r WIMSETokenResponse) GoString() string { return r.String() }

// Format prints String for every verb.
func (r WIMSETokenResponse) Format(f fmt.State, verb rune) { formatRedacted(f, verb, r, r) }

// LogValue hides the token from log/slog.
func (r WIMSETokenResponse) LogValue() slog.Value {
	return slog.GroupValue(secretAttr("token", r.Token != ""), slog.String("workload_id", r.WorkloadID),
		slog.String("trust_domain", r.TrustDomain), slog.String("expires_at", r.ExpiresAt))
}

// VerifyWIMSETokenResponse is the gateway's verdict on a WIMSE token.
type VerifyWIMSETokenResponse struct {
	Valid        bool     `json:"valid"`
	AgentID      string   `json:"agent_id"`
	WorkloadID   string   `json:"workload_id"`
	TrustDomain  string   `json:"trust_domain"`
	Capabilities []string `json:"capabilities"`
	// Reason says why an invalid token was refused.
	Reason string `json:"reason"`
}

// ChallengeResponse is a single-use nonce for a proof of possession.
type ChallengeResponse struct {
	Nonce string `json:"nonce"`
	// ExpiresAt is the gateway's expiry of the nonce, kept as sent.
	ExpiresAt string `json:"expires_at"`
}

// WIMSEProof is a signed proof of possession: an Ed25519 signature, in
// base64url without padding, over "pop-v1:<nonce>:<agent_id>:<aud>:<ts>".
// IssueTokenWithProof builds it; its String hides the signature.
type WIMSEProof struct {
	Nonce     string `json:"nonce"`
	TS        int64  `json:"ts"`
	Signature string `json:"signature"`
}

// String describes the proof without its signature.
func (p WIMSEProof) String() string {
	return "agenttrust.WIMSEProof{nonce: " + strconv.Quote(p.Nonce) + ", ts: " +
		strconv.FormatInt(p.TS, 10) + ", signature: " + redactedSecret(p.Signature) + "}"
}

// GoString is String.
func (p WIMSEProof) GoString() string { return p.String() }

// Format prints String for every verb.
func (p WIMSEProof) Format(f fmt.State, verb rune) { formatRedacted(f, verb, p, p) }

// LogValue hides the signature from log/slog.
func (p WIMSEProof) LogValue() slog.Value { return slog.StringValue(p.String()) }

// WIMSETokenParams are the arguments of WIMSE.IssueToken. Nil pointers are
// not sent; a pointer to a zero value ("" or 0) is.
type WIMSETokenParams struct {
	// AgentID is the agent the token is for.
	AgentID string
	// ServiceName is sent when non-nil.
	ServiceName *string
	// Environment is sent when non-nil.
	Environment *string
	// TTLSeconds is sent when non-nil.
	TTLSeconds *int
	// Audience is sent when non-empty.
	Audience []string
	// Proof is sent when non-nil; IssueTokenWithProof fills it.
	Proof *WIMSEProof
}

type wimseTokenBody struct {
	AgentID     string      `json:"agent_id"`
	ServiceName *string     `json:"service_name,omitempty"`
	Environment *string     `json:"environment,omitempty"`
	TTLSeconds  *int        `json:"ttl_seconds,omitempty"`
	Audience    []string    `json:"audience,omitempty"`
	Proof       *WIMSEProof `json:"proof,omitempty"`
}

// IssueToken issues a WIMSE workload token: POST /api/v1/wimse/token. A
// reply without a token is a *DecodeError.
func (s *WIMSEService) IssueToken(ctx context.Context, p WIMSETokenParams, opts ...RequestOption) (*WIMSETokenResponse, error) {
	body := &wimseTokenBody{AgentID: p.AgentID, ServiceName: p.ServiceName, Environment: p.Environment,
		TTLSeconds: p.TTLSeconds, Audience: p.Audience, Proof: p.Proof}
	r := &request{method: http.MethodPost, path: "/api/v1/wimse/token", body: body}
	if p.Proof != nil {
		r.secrets = []string{p.Proof.Signature}
	}
	return callChecked(ctx, s.client, r, func(t *WIMSETokenResponse) bool { return t.Token != "" }, "WIMSE token reply has no token", opts)
}

// VerifyToken asks the gateway whether a WIMSE token is valid: POST
// /api/v1/wimse/verify. An empty trustDomainFilter is not sent. An invalid
// token is a result with Valid false and a nil error.
func (s *WIMSEService) VerifyToken(ctx context.Context, token, trustDomainFilter string, opts ...RequestOption) (*VerifyWIMSETokenResponse, error) {
	body := &struct {
		Token             string `json:"token"`
		TrustDomainFilter string `json:"trust_domain_filter,omitempty"`
	}{token, trustDomainFilter}
	return call[VerifyWIMSETokenResponse](ctx, s.client, &request{method: http.MethodPost, path: "/api/v1/wimse/verify",
		body: body, idempotent: true, secrets: []string{token}}, "", opts)
}

// Challenge asks for a single-use nonce to prove possession of the agent's
// key: POST /api/v1/agents/{agent_id}/challenge, with no body. A reply
// without a nonce is a *DecodeError.
func (s *WIMSEService) Challenge(ctx context.Context, agentID string, opts ...RequestOption) (*ChallengeResponse, error) {
	path, err := buildPath("/api/v1/agents/{agent_id}/challenge", agentID)
	if err != nil {
		return nil, err
	}
	return callChecked(ctx, s.client, &request{method: http.MethodPost, path: path},
		func(ch *ChallengeResponse) bool { return ch.Nonce != "" }, "challenge reply has no nonce", opts)
}

// WIMSEProofParams are the arguments of WIMSE.IssueTokenWithProof.
type WIMSEProofParams struct {
	// AgentID is the agent the token is for; required.
	AgentID string
	// KeyStore signs the proof with the agent's private key; required.
	KeyStore KeyStore
	// ServiceName is sent when non-nil.
	ServiceName *string
	// Environment is sent when non-nil.
	Environment *string
	// TTLSeconds is sent when non-nil.
	TTLSeconds *int
	// Audience is sent when non-empty and is part of the signed message.
	Audience []string
}

// IssueTokenWithProof issues a WIMSE token bound to the agent's key: it asks
// for a challenge, signs "pop-v1:<nonce>:<agent_id>:<aud>:<ts>" through the
// key store (aud is the audience joined with ",", ts the Unix time in
// seconds) and sends the proof with the token request.
//
// A missing agent ID or key store is a *ValidationError before any I/O. A
// key store failure matches ErrKeyStore (and ErrKeyNotFound when the store
// has no key); the challenge it was asked to sign is then spent.
//
// The request options apply to both requests; WithResponseInto describes
// the token request's response.
func (s *WIMSEService) IssueTokenWithProof(ctx context.Context, p WIMSEProofParams, opts ...RequestOption) (*WIMSETokenResponse, error) {
	return s.issueWithProof(ctx, p, nil, opts...)
}

// popMessage builds the exact bytes the gateway rebuilds and verifies.
func popMessage(nonce, agentID string, audience []string, ts int64) []byte {
	b := make([]byte, 0, 16+len(nonce)+len(agentID)+24*len(audience))
	b = append(b, "pop-v1:"...)
	b = append(b, nonce...)
	b = append(b, ':')
	b = append(b, agentID...)
	b = append(b, ':')
	b = append(b, strings.Join(audience, ",")...)
	b = append(b, ':')
	return strconv.AppendInt(b, ts, 10)
}

// issueWithProof runs the proof-of-possession flow; a non-nil pub is
// checked against the store's signature before anything is sent.
func (s *WIMSEService) issueWithProof(ctx context.Context, p WIMSEProofParams, pub ed25519.PublicKey, opts ...RequestOption) (*WIMSETokenResponse, error) {
	if missingKeyStore(p.KeyStore) {
		return nil, validationErr("missing required key store")
	}
	ch, err := s.Challenge(ctx, p.AgentID, opts...) // validates the agent ID first
	if err != nil {
		return nil, err
	}
	ts := s.client.now().Unix()
	msg := popMessage(ch.Nonce, p.AgentID, p.Audience, ts)
	sig, err := p.KeyStore.Sign(ctx, p.AgentID, msg)
	if err != nil {
		return nil, keyStoreErr("key store could not sign the proof of possession for agent "+
			strconv.Quote(p.AgentID)+" (one challenge was spent)", err)
	}
	if len(sig) != ed25519.SignatureSize {
		return nil, keyStoreErr("key store signature for agent "+strconv.Quote(p.AgentID)+" (one challenge was spent)",
			fmt.Errorf("%d bytes, not an Ed25519 signature", len(sig)))
	}
	if pub != nil && !ed25519.Verify(pub, msg, sig) {
		return nil, validationErr("the key store's key for agent " + strconv.Quote(p.AgentID) +
			" does not match the configured public key (one challenge was spent)")
	}
	return s.IssueToken(ctx, WIMSETokenParams{
		AgentID: p.AgentID, ServiceName: p.ServiceName, Environment: p.Environment,
		TTLSeconds: p.TTLSeconds, Audience: p.Audience,
		Proof: &WIMSEProof{Nonce: ch.Nonce, TS: ts, Signature: base64.RawURLEncoding.EncodeToString(sig)},
	}, opts...)
}

// wimseExpiry parses a token's expires_at: RFC 3339, zone-less values as
// UTC. Empty or unparsable values give now + 300 s.
func wimseExpiry(raw string, now time.Time) time.Time {
	if t := parseTimestamp(raw); !t.IsZero() {
		return t
	}
	return now.Add(300 * time.Second)
}
