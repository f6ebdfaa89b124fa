package agenttrusttest

// Agent identity: Ed25519 agent keys, challenges, WIMSE tokens with proof of
// possession, DPoP-protected action checks and the organisation's security
// settings.
//
// Test API: WithSecuritySettings, Server.SetSecuritySettings and
// Server.SecuritySettings turn the requirements on; Server.WIMSETokens,
// PoPProofs, DPoPProofs and IdentityRejections (each refusal with a
// RejectionReason such as "jti_replayed") show the identity traffic;
// Server.RevokeWIMSEToken and RevokeWIMSETokens revoke tokens early;
// Server.WIMSESigningKey and JWKThumbprint help tests check tokens. The
// records hide their tokens, proofs and signatures when printed or logged.
//
// Clock: nonce expiry, the PoP ts window, the DPoP iat window and token
// expiry are all judged by Server.Now, so a test that moves the fake's clock
// must move the client's clock with it.

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	// ChallengeTTL is how long a challenge nonce can be used.
	ChallengeTTL = 60 * time.Second
	// ProofWindow is how far a proof-of-possession ts or a DPoP iat may lie
	// from the server clock, in either direction.
	ProofWindow = 60 * time.Second
	// DefaultWIMSETTL is the lifetime of a WIMSE token issued without
	// ttl_seconds (or with 0).
	DefaultWIMSETTL = time.Hour
	// WIMSETrustDomain is the trust domain of every WIMSE token the fake
	// issues; workload ids are spiffe://<trust domain>/agent/<agent id>.
	WIMSETrustDomain = "agenttrust.id"
)

// wimseKeyID names the fake's signing key in WIMSE token headers.
const wimseKeyID = "agenttrusttest-wimse"

// SecuritySettings are the organisation settings of proof of possession and
// sender-constrained tokens. The fake keeps one set for all organisations.
type SecuritySettings struct {
	// RequireProofOfPossession makes POST /api/v1/wimse/token refuse a
	// request without a valid proof.
	RequireProofOfPossession bool `json:"require_proof_of_possession"`
	// RequireSenderConstrainedTokens makes every action check need a valid
	// WIMSE token (Authorization: Bearer) and a DPoP proof bound to it.
	RequireSenderConstrainedTokens bool `json:"require_sender_constrained_tokens"`
}

// RejectionReason says why the fake refused an identity attempt.
type RejectionReason string

// Rejection reasons recorded in IdentityRejection, PoPRecord and DPoPRecord.
const (
	ReasonMissingProof   RejectionReason = "missing_proof"     // PoP required, no proof sent
	ReasonNoPublicKey    RejectionReason = "no_public_key"     // the agent has no registered key
	ReasonNonceUnknown   RejectionReason = "nonce_unknown"     // never issued, or issued for another agent
	ReasonNonceReused    RejectionReason = "nonce_reused"      // already presented once
	ReasonNonceExpired   RejectionReason = "nonce_expired"     // older than ChallengeTTL
	ReasonTSOutOfWindow  RejectionReason = "ts_out_of_window"  // PoP ts further than ProofWindow from now
	ReasonBadSignature   RejectionReason = "bad_signature"     // PoP or DPoP signature does not verify
	ReasonMissingToken   RejectionReason = "missing_token"     // no Authorization: Bearer on a check
	ReasonTokenInvalid   RejectionReason = "token_invalid"     // malformed, forged or unknown WIMSE token
	ReasonTokenExpired   RejectionReason = "token_expired"     // WIMSE token past its exp
	ReasonTokenRevoked   RejectionReason = "token_revoked"     // revoked token, or its agent revoked
	ReasonTokenUnbound   RejectionReason = "token_unbound"     // WIMSE token without cnf.jkt
	ReasonAgentMismatch  RejectionReason = "agent_mismatch"    // token of another agent than the check's
	ReasonMissingDPoP    RejectionReason = "missing_dpop"      // no DPoP header (or more than one)
	ReasonMalformedDPoP  RejectionReason = "malformed_dpop"    // not a compact JWS with the required claims
	ReasonBadDPoPHeader  RejectionReason = "bad_dpop_header"   // typ is not dpop+jwt, alg not EdDSA or jwk not an Ed25519 OKP key
	ReasonJTIReplayed    RejectionReason = "jti_replayed"      // jti seen before
	ReasonHTMMismatch    RejectionReason = "htm_mismatch"      // htm is not the request method
	ReasonHTUMismatch    RejectionReason = "htu_mismatch"      // htu is not listener URL + path
	ReasonIATOutOfWindow RejectionReason = "iat_out_of_window" // iat further than ProofWindow from now
	ReasonATHMismatch    RejectionReason = "ath_mismatch"      // ath missing or not the hash of the token
	ReasonJKTMismatch    RejectionReason = "jkt_mismatch"      // proof key thumbprint is not cnf.jkt
)

// IdentityRejection is one refused identity attempt: a token request whose
// proof of possession failed, or an action check whose credentials failed.
type IdentityRejection struct {
	Time     time.Time
	Endpoint string // route, e.g. "POST /api/v1/wimse/token"
	AgentID  string
	Reason   RejectionReason
	Message  string // the "error" of the 401 reply
}

// PoPRecord is one proof of possession presented to POST /api/v1/wimse/token.
type PoPRecord struct {
	Time      time.Time
	AgentID   string
	Nonce     string
	TS        int64
	Signature string // as sent (base64url)
	Message   string // the pop-v1 message the fake rebuilt and verified against
	Accepted  bool
	Reason    RejectionReason // "" when accepted
}

// WIMSETokenRecord is one WIMSE token the fake issued.
type WIMSETokenRecord struct {
	Token     string
	AgentID   string
	JKT       string // cnf.jkt, "" when the agent has no key
	Audience  []string
	WithProof bool // issued after a verified proof of possession
	IssuedAt  time.Time
	ExpiresAt time.Time
	Revoked   bool
}

// DPoPRecord is one DPoP proof presented to an action check, accepted or not.
type DPoPRecord struct {
	Time     time.Time
	Method   string // the request method
	URL      string // the htu the fake expected: listener URL + path
	Proof    string // the DPoP header as sent
	HTM, HTU string // claims, "" when the proof could not be parsed
	IAT      int64
	JTI      string
	ATH      string
	JKT      string // RFC 7638 thumbprint of the proof's jwk
	AgentID  string // agent of the presented token, when it parsed
	Accepted bool
	Reason   RejectionReason // "" when accepted
}

// identityState is part of state and guarded by Server.mu. Its zero value
// is ready to use.
type identityState struct {
	settings   SecuritySettings
	nonces     map[string]*nonceState
	tokens     map[string]*WIMSETokenRecord // by token value
	tokenOrder []*WIMSETokenRecord
	jtis       map[string]bool
	pops       []PoPRecord
	proofs     []DPoPRecord
	rejections []IdentityRejection
}

type nonceState struct {
	agentID string
	expires time.Time
	used    bool
}

// WithSecuritySettings sets the organisation security settings in force
// from the start (default: nothing required).
func WithSecuritySettings(ss SecuritySettings) Option {
	return func(c *config) { c.secure = ss }
}

// SetSecuritySettings replaces the organisation security settings.
func (s *Server) SetSecuritySettings(ss SecuritySettings) {
	s.mu.Lock()
	s.st.identity.settings = ss
	s.mu.Unlock()
}

// SecuritySettings returns the organisation security settings.
func (s *Server) SecuritySettings() SecuritySettings {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.identity.settings
}

// WIMSETokens returns a copy of every WIMSE token issued so far, in order.
func (s *Server) WIMSETokens() []WIMSETokenRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]WIMSETokenRecord, len(s.st.identity.tokenOrder))
	for i, t := range s.st.identity.tokenOrder {
		out[i] = *t
		out[i].Audience = append([]string(nil), t.Audience...)
	}
	return out
}

// PoPProofs returns every proof of possession presented so far, in order.
func (s *Server) PoPProofs() []PoPRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]PoPRecord(nil), s.st.identity.pops...)
}

// DPoPProofs returns every DPoP proof presented to an action check so far,
// accepted or refused, in order.
func (s *Server) DPoPProofs() []DPoPRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]DPoPRecord(nil), s.st.identity.proofs...)
}

// IdentityRejections returns every refused identity attempt so far, in order.
func (s *Server) IdentityRejections() []IdentityRejection {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]IdentityRejection(nil), s.st.identity.rejections...)
}

// RevokeWIMSEToken revokes one issued WIMSE token before its expiry and
// reports whether the fake had issued it.
func (s *Server) RevokeWIMSEToken(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.st.identity.tokens[token]
	if ok {
		t.Revoked = true
	}
	return ok
}

// RevokeWIMSETokens revokes every WIMSE token of agentID and returns how
// many were not revoked yet.
func (s *Server) RevokeWIMSETokens(agentID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, t := range s.st.identity.tokenOrder {
		if t.AgentID == agentID && !t.Revoked {
			t.Revoked = true
			n++
		}
	}
	return n
}

// WIMSESigningKey is the public key of the fake's own Ed25519 key, which
// signs the WIMSE tokens (EdDSA JWTs).
func (s *Server) WIMSESigningKey() ed25519.PublicKey {
	return s.cardKey.Public().(ed25519.PublicKey)
}

// JWKThumbprint is the RFC 7638 thumbprint of an Ed25519 public key as an
// OKP JWK: SHA-256 over {"crv":"Ed25519","kty":"OKP","x":"<x>"}, base64url
// without padding. It is the value of cnf.jkt in the fake's WIMSE tokens.
func JWKThumbprint(pub ed25519.PublicKey) string {
	x := base64.RawURLEncoding.EncodeToString(pub)
	sum := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + x + `"}`))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// parseAgentPublicKey parses an Ed25519 public key from a PKIX "PUBLIC KEY"
// PEM with nothing but whitespace around it.
func parseAgentPublicKey(pemText string) (ed25519.PublicKey, error) {
	block, rest := pem.Decode([]byte(pemText))
	if block == nil {
		return nil, errors.New("not a PEM block")
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, errors.New("data after the PEM block")
	}
	if block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("PEM type %q, want PUBLIC KEY", block.Type)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, errors.New("not a PKIX public key")
	}
	key, ok := pub.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%T is not an Ed25519 key", pub)
	}
	return key, nil
}

// reject records a refused identity attempt and answers 401. Callers hold s.mu.
func (s *Server) rejectLocked(c *call, endpoint, agentID string, reason RejectionReason, msg string) {
	s.st.identity.rejections = append(s.st.identity.rejections, IdentityRejection{
		Time: s.Now(), Endpoint: endpoint, AgentID: agentID, Reason: reason, Message: msg,
	})
	c.fail(http.StatusUnauthorized, msg)
}

// --- organisation settings ---

type securitySettingsRequest struct {
	RequireProofOfPossession       bool `json:"require_proof_of_possession" wire:"always"`
	RequireSenderConstrainedTokens bool `json:"require_sender_constrained_tokens" wire:"always"`
}

func (s *Server) getSecuritySettings(c *call) { c.reply(http.StatusOK, s.SecuritySettings()) }

func (s *Server) putSecuritySettings(c *call, req securitySettingsRequest) {
	ss := SecuritySettings(req)
	s.SetSecuritySettings(ss)
	c.reply(http.StatusOK, ss)
}

// --- challenge ---

// challenge issues a single-use nonce for an active agent.
func (s *Server) challenge(c *call) {
	id := c.param("agent_id")
	now := s.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.activeAgentLocked(c, id) == nil {
		return
	}
	if s.st.identity.nonces == nil {
		s.st.identity.nonces = map[string]*nonceState{}
	}
	nonce := randomHex(16)
	exp := now.Add(ChallengeTTL)
	s.st.identity.nonces[nonce] = &nonceState{agentID: id, expires: exp}
	c.reply(http.StatusOK, map[string]any{"nonce": nonce, "expires_at": ts(exp)})
}

// --- WIMSE token ---

type popProof struct {
	Nonce     string `json:"nonce" wire:"always,nonempty"`
	TS        int64  `json:"ts" wire:"always"`
	Signature string `json:"signature" wire:"always,nonempty"`
}

type wimseTokenRequest struct {
	AgentID     string    `json:"agent_id" wire:"always,nonempty"`
	ServiceName *string   `json:"service_name"`
	Environment *string   `json:"environment"`
	TTLSeconds  *int64    `json:"ttl_seconds"`
	Audience    []string  `json:"audience" wire:"truthy"`
	Proof       *popProof `json:"proof"`
}

func (r wimseTokenRequest) validate() string {
	if r.TTLSeconds != nil && *r.TTLSeconds < 0 {
		return `key "ttl_seconds" must not be negative`
	}
	return ""
}

const wimseTokenEndpoint = "POST /api/v1/wimse/token"

// popMessage is the exact byte string a proof of possession signs.
func popMessage(nonce, agentID string, audience []string, ts int64) string {
	return "pop-v1:" + nonce + ":" + agentID + ":" + strings.Join(audience, ",") + ":" + strconv.FormatInt(ts, 10)
}

func (s *Server) issueWIMSEToken(c *call, req wimseTokenRequest) {
	ttl := DefaultWIMSETTL
	if req.TTLSeconds != nil && *req.TTLSeconds > 0 {
		ttl = time.Duration(*req.TTLSeconds) * time.Second
	}
	now := s.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ag := s.activeAgentLocked(c, req.AgentID)
	if ag == nil {
		return
	}
	var key ed25519.PublicKey
	if ag.PublicKey != "" {
		key, _ = parseAgentPublicKey(ag.PublicKey)
	}
	if req.Proof == nil {
		if s.st.identity.settings.RequireProofOfPossession {
			s.rejectLocked(c, wimseTokenEndpoint, req.AgentID, ReasonMissingProof, "proof of possession required")
			return
		}
	} else if reason, msg := s.verifyPoPLocked(req, key, now); reason != "" {
		s.rejectLocked(c, wimseTokenEndpoint, req.AgentID, reason, msg)
		return
	}

	exp := now.Add(ttl)
	rec := &WIMSETokenRecord{
		AgentID: req.AgentID, Audience: append([]string(nil), req.Audience...),
		WithProof: req.Proof != nil, IssuedAt: now, ExpiresAt: exp,
	}
	workload := "spiffe://" + WIMSETrustDomain + "/agent/" + req.AgentID
	claims := map[string]any{
		"iss": s.gwURL, "sub": workload, "agent_id": req.AgentID,
		"iat": now.Unix(), "exp": exp.Unix(), "jti": s.st.nextID("wimse"),
	}
	if len(req.Audience) > 0 {
		claims["aud"] = req.Audience
	}
	if req.ServiceName != nil && *req.ServiceName != "" {
		claims["service_name"] = *req.ServiceName
	}
	if req.Environment != nil && *req.Environment != "" {
		claims["environment"] = *req.Environment
	}
	if key != nil {
		rec.JKT = JWKThumbprint(key)
		claims["cnf"] = map[string]string{"jkt": rec.JKT}
	}
	rec.Token = s.signJWT(wimseKeyID, claims)
	if s.st.identity.tokens == nil {
		s.st.identity.tokens = map[string]*WIMSETokenRecord{}
	}
	s.st.identity.tokens[rec.Token] = rec
	s.st.identity.tokenOrder = append(s.st.identity.tokenOrder, rec)
	c.reply(http.StatusOK, map[string]any{
		"token": rec.Token, "workload_id": workload, "trust_domain": WIMSETrustDomain, "expires_at": ts(exp),
	})
}

// verifyPoPLocked checks a proof of possession and consumes its nonce. It
// returns "" when the proof is valid.
func (s *Server) verifyPoPLocked(req wimseTokenRequest, key ed25519.PublicKey, now time.Time) (RejectionReason, string) {
	p := req.Proof
	msg := popMessage(p.Nonce, req.AgentID, req.Audience, p.TS)
	rec := PoPRecord{Time: now, AgentID: req.AgentID, Nonce: p.Nonce, TS: p.TS, Signature: p.Signature, Message: msg}
	reason, text := func() (RejectionReason, string) {
		if key == nil {
			return ReasonNoPublicKey, "agent has no Ed25519 public key registered"
		}
		n, ok := s.st.identity.nonces[p.Nonce]
		switch {
		case !ok || n.agentID != req.AgentID:
			return ReasonNonceUnknown, "unknown nonce"
		case n.used:
			return ReasonNonceReused, "nonce already used"
		}
		n.used = true // single use, even when the rest of the proof fails
		if !now.Before(n.expires) {
			return ReasonNonceExpired, "nonce expired"
		}
		if d := now.Sub(time.Unix(p.TS, 0)); d > ProofWindow || d < -ProofWindow {
			return ReasonTSOutOfWindow, "proof ts outside the allowed window"
		}
		sig, err := base64.RawURLEncoding.Strict().DecodeString(p.Signature)
		if err != nil || len(sig) != ed25519.SignatureSize {
			return ReasonBadSignature, "proof signature is not a base64url Ed25519 signature"
		}
		if !ed25519.Verify(key, []byte(msg), sig) {
			return ReasonBadSignature, "proof signature does not verify"
		}
		return "", ""
	}()
	rec.Accepted, rec.Reason = reason == "", reason
	s.st.identity.pops = append(s.st.identity.pops, rec)
	return reason, text
}

type wimseClaims struct {
	Sub     string `json:"sub"`
	AgentID string `json:"agent_id"`
	Exp     int64  `json:"exp"`
	Cnf     struct {
		JKT string `json:"jkt"`
	} `json:"cnf"`
}

// checkWIMSELocked verifies a WIMSE token: the fake's signature, that the
// fake issued it, expiry, revocation and the agent's status.
func (s *Server) checkWIMSELocked(token string, now time.Time) (*WIMSETokenRecord, wimseClaims, RejectionReason, string) {
	var claims wimseClaims
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, claims, ReasonTokenInvalid, "malformed token"
	}
	enc := base64.RawURLEncoding.Strict()
	hdr, err1 := enc.DecodeString(parts[0])
	payload, err2 := enc.DecodeString(parts[1])
	sig, err3 := enc.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, claims, ReasonTokenInvalid, "malformed token"
	}
	var h struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if json.Unmarshal(hdr, &h) != nil || h.Alg != "EdDSA" || h.Kid != wimseKeyID {
		return nil, claims, ReasonTokenInvalid, "token is not an EdDSA token of this gateway"
	}
	if !ed25519.Verify(s.WIMSESigningKey(), []byte(parts[0]+"."+parts[1]), sig) {
		return nil, claims, ReasonTokenInvalid, "invalid token signature"
	}
	if json.Unmarshal(payload, &claims) != nil {
		return nil, claims, ReasonTokenInvalid, "malformed token claims"
	}
	rec, ok := s.st.identity.tokens[token]
	switch {
	case !ok:
		return nil, claims, ReasonTokenInvalid, "unknown token"
	case rec.Revoked:
		return rec, claims, ReasonTokenRevoked, "token revoked"
	case now.Unix() >= claims.Exp:
		return rec, claims, ReasonTokenExpired, "token expired"
	}
	if ag, ok := s.st.agents.get(claims.AgentID); !ok || !ag.active() {
		return rec, claims, ReasonTokenRevoked, "agent revoked"
	}
	return rec, claims, "", ""
}

// --- WIMSE verify ---

type wimseVerifyRequest struct {
	Token             string `json:"token" wire:"always"`
	TrustDomainFilter string `json:"trust_domain_filter" wire:"truthy"`
}

func (s *Server) verifyWIMSEToken(c *call, req wimseVerifyRequest) {
	now := s.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	_, claims, reason, msg := s.checkWIMSELocked(req.Token, now)
	if reason == "" && req.TrustDomainFilter != "" && req.TrustDomainFilter != WIMSETrustDomain {
		msg = "trust domain mismatch"
	}
	if msg != "" {
		c.reply(http.StatusOK, map[string]any{"valid": false, "reason": msg})
		return
	}
	ag, _ := s.st.agents.get(claims.AgentID)
	c.reply(http.StatusOK, map[string]any{
		"valid": true, "agent_id": claims.AgentID, "workload_id": claims.Sub,
		"trust_domain": WIMSETrustDomain, "capabilities": append([]string{}, ag.Capabilities...),
	})
}

// --- sender-constrained action checks ---

const checkEndpoint = "POST /api/v1/agenttrust/check"

type dpopPayload struct {
	HTM string      `json:"htm"`
	HTU string      `json:"htu"`
	IAT json.Number `json:"iat"`
	JTI string      `json:"jti"`
	ATH *string     `json:"ath"`
}

// checkCredentials enforces sender-constrained tokens on an action check.
// It runs when the organisation requires them or when the client sends an
// Authorization or DPoP header anyway; it reports whether the check may
// proceed and has answered 401 otherwise.
func (s *Server) checkCredentials(c *call, agentID string) bool {
	authz := c.r.Header.Values("Authorization")
	dpops := c.r.Header.Values("DPoP")
	now := s.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.st.identity.settings.RequireSenderConstrainedTokens && len(authz) == 0 && len(dpops) == 0 {
		return true
	}
	reject := func(reason RejectionReason, msg string) bool {
		s.rejectLocked(c, checkEndpoint, agentID, reason, msg)
		return false
	}
	if len(authz) == 0 {
		return reject(ReasonMissingToken, "sender-constrained token required")
	}
	scheme, token, ok := strings.Cut(authz[0], " ")
	if len(authz) != 1 || !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return reject(ReasonTokenInvalid, "malformed Authorization header")
	}
	expected := c.base + requestPath(c.r)
	var rec *DPoPRecord
	if len(dpops) > 0 {
		rec = &DPoPRecord{Time: now, Method: c.r.Method, URL: expected, Proof: dpops[0]}
		defer func() { s.st.identity.proofs = append(s.st.identity.proofs, *rec) }()
	}
	fail := func(reason RejectionReason, msg string) bool {
		if rec != nil {
			rec.Reason = reason
		}
		return reject(reason, msg)
	}
	_, claims, reason, msg := s.checkWIMSELocked(token, now)
	if rec != nil {
		rec.AgentID = claims.AgentID
	}
	switch {
	case reason != "":
		return fail(reason, msg)
	case claims.AgentID != agentID:
		return fail(ReasonAgentMismatch, "token belongs to another agent")
	case claims.Cnf.JKT == "":
		return fail(ReasonTokenUnbound, "token is not bound to a key")
	case len(dpops) != 1:
		return fail(ReasonMissingDPoP, "exactly one DPoP proof required")
	}
	if reason, msg := s.verifyDPoPLocked(rec, c.r.Method, expected, token, claims.Cnf.JKT, now); reason != "" {
		return fail(reason, msg)
	}
	rec.Accepted = true
	return true
}

// misplacedCredentials refuses agent credentials on any endpoint but the
// action check: a DPoP header, or a WIMSE token this fake issued as bearer.
func (s *Server) misplacedCredentials(rt *route, r *http.Request) string {
	if rt.key() == checkEndpoint {
		return ""
	}
	if len(r.Header.Values("DPoP")) > 0 {
		return "a DPoP header is only accepted on " + checkEndpoint
	}
	for _, v := range r.Header.Values("Authorization") {
		scheme, token, _ := strings.Cut(v, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			continue
		}
		s.mu.Lock()
		_, known := s.st.identity.tokens[token]
		s.mu.Unlock()
		if known {
			return "a WIMSE bearer token is only accepted on " + checkEndpoint
		}
	}
	return ""
}

// requestPath is the path of r as the client sent it (still escaped).
func requestPath(r *http.Request) string {
	if strings.HasPrefix(r.RequestURI, "/") {
		p, _, _ := strings.Cut(r.RequestURI, "?")
		return p
	}
	return r.URL.EscapedPath()
}

// verifyDPoPLocked checks one DPoP proof against the request and the token,
// filling rec with what it parsed.
func (s *Server) verifyDPoPLocked(rec *DPoPRecord, method, htu, token, jkt string, now time.Time) (RejectionReason, string) {
	parts := strings.Split(rec.Proof, ".")
	if len(parts) != 3 {
		return ReasonMalformedDPoP, "DPoP proof is not a compact JWS"
	}
	enc := base64.RawURLEncoding.Strict()
	hdrJSON, err1 := enc.DecodeString(parts[0])
	payJSON, err2 := enc.DecodeString(parts[1])
	sig, err3 := enc.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return ReasonMalformedDPoP, "DPoP proof is not base64url"
	}
	var hdr struct {
		Typ string         `json:"typ"`
		Alg string         `json:"alg"`
		JWK map[string]any `json:"jwk"`
	}
	if json.Unmarshal(hdrJSON, &hdr) != nil {
		return ReasonMalformedDPoP, "DPoP header is not a JSON object"
	}
	if hdr.Typ != "dpop+jwt" || hdr.Alg != "EdDSA" {
		return ReasonBadDPoPHeader, `DPoP header needs typ "dpop+jwt" and alg "EdDSA"`
	}
	x, _ := hdr.JWK["x"].(string)
	pubBytes, err := enc.DecodeString(x)
	_, hasD := hdr.JWK["d"]
	if hdr.JWK["kty"] != "OKP" || hdr.JWK["crv"] != "Ed25519" || err != nil || len(pubBytes) != ed25519.PublicKeySize || hasD {
		return ReasonBadDPoPHeader, "DPoP jwk must be a public Ed25519 OKP key"
	}
	pub := ed25519.PublicKey(pubBytes)
	rec.JKT = JWKThumbprint(pub)
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig) {
		return ReasonBadSignature, "DPoP signature does not verify"
	}
	var p dpopPayload
	dec := json.NewDecoder(strings.NewReader(string(payJSON)))
	dec.UseNumber()
	if dec.Decode(&p) != nil {
		return ReasonMalformedDPoP, "DPoP payload is not a JSON object"
	}
	iat, errIAT := p.IAT.Int64()
	rec.HTM, rec.HTU, rec.IAT, rec.JTI = p.HTM, p.HTU, iat, p.JTI
	if p.ATH != nil {
		rec.ATH = *p.ATH
	}
	if errIAT != nil || !isLowerHex(p.JTI, 32) {
		return ReasonMalformedDPoP, "DPoP payload needs an integer iat and a 32-hex-digit jti"
	}
	if s.st.identity.jtis[p.JTI] {
		return ReasonJTIReplayed, "DPoP proof replayed"
	}
	if s.st.identity.jtis == nil {
		s.st.identity.jtis = map[string]bool{}
	}
	s.st.identity.jtis[p.JTI] = true
	ath := sha256.Sum256([]byte(token))
	switch d := now.Sub(time.Unix(iat, 0)); {
	case p.HTM != method:
		return ReasonHTMMismatch, "DPoP htm does not match the request method"
	case p.HTU != htu:
		return ReasonHTUMismatch, "DPoP htu does not match the request URL"
	case d > ProofWindow || d < -ProofWindow:
		return ReasonIATOutOfWindow, "DPoP iat outside the allowed window"
	case p.ATH == nil || *p.ATH != base64.RawURLEncoding.EncodeToString(ath[:]):
		return ReasonATHMismatch, "DPoP ath does not match the access token"
	case rec.JKT != jkt:
		return ReasonJKTMismatch, "DPoP key does not match the token's cnf.jkt"
	}
	return "", ""
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// listenerURL is the base URL of the listener serving the given APIs.
func (s *Server) listenerURL(served api) string {
	switch served {
	case apiAuth:
		return s.authURL
	case apiAudit:
		return s.auditURL
	}
	return s.gwURL
}
