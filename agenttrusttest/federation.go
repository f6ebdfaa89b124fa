package agenttrusttest

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

type provider struct {
	ID                    string `json:"id"`
	OrgID                 string `json:"org_id"`
	Issuer                string `json:"issuer"`
	Name                  string `json:"name"`
	JWKSURI               string `json:"jwks_uri"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	TrustLevel            string `json:"trust_level"`
	Status                string `json:"status"`
	CreatedAt             ts     `json:"created_at"`
	UpdatedAt             ts     `json:"updated_at"`
}

type fedToken struct {
	issuer    string
	agentID   string
	expiresAt time.Time
}

// AddFederatedToken makes token known to federation introspection and
// sessions, as if issuer had issued it for agentID until expiresAt. The
// fake validates no external token cryptographically; it knows only the
// tokens added here and those it issued itself.
func (s *Server) AddFederatedToken(token, issuer, agentID string, expiresAt time.Time) {
	s.mu.Lock()
	s.st.fedTokens[token] = &fedToken{issuer: issuer, agentID: agentID, expiresAt: expiresAt}
	s.mu.Unlock()
}

type registerProviderRequest struct {
	Issuer     string  `json:"issuer" wire:"always,nonempty"`
	Name       string  `json:"name" wire:"always,nonempty"`
	TrustLevel *string `json:"trust_level"`
}

func (s *Server) registerProvider(c *call, req registerProviderRequest) {
	trust := "medium"
	if req.TrustLevel != nil {
		trust = *req.TrustLevel
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.st.providers.byID {
		if p.OrgID == c.org && p.Issuer == req.Issuer {
			c.fail(http.StatusConflict, fmt.Sprintf("provider for issuer %q already exists", req.Issuer))
			return
		}
	}
	now := ts(s.Now())
	base := strings.TrimRight(req.Issuer, "/")
	p := &provider{
		ID: s.st.nextID("fp"), OrgID: c.org, Issuer: req.Issuer, Name: req.Name,
		JWKSURI: base + "/.well-known/jwks.json", AuthorizationEndpoint: base + "/authorize",
		TokenEndpoint: base + "/token", TrustLevel: trust, Status: "active",
		CreatedAt: now, UpdatedAt: now,
	}
	s.st.providers.put(p.ID, p)
	c.reply(http.StatusCreated, map[string]any{"provider": *p})
}

// listProviders wraps every element in "provider", as the wire contract allows.
func (s *Server) listProviders(c *call) {
	mine := listOf(s, &s.st.providers, func(p *provider) bool { return p.OrgID == c.org })
	out := make([]any, len(mine))
	for i, p := range mine {
		out[i] = map[string]any{"provider": p}
	}
	c.reply(http.StatusOK, map[string]any{"providers": out})
}

type federationTokenRequest struct {
	Token      string `json:"token" wire:"always"`
	IssuerHint string `json:"issuer_hint" wire:"truthy"`
}

// fedLookupLocked returns the token or why it is inactive.
func (s *Server) fedLookupLocked(req federationTokenRequest, now time.Time) (*fedToken, string) {
	t, ok := s.st.fedTokens[req.Token]
	switch {
	case !ok:
		return nil, "unknown token"
	case now.After(t.expiresAt):
		return nil, "token expired"
	case req.IssuerHint != "" && req.IssuerHint != t.issuer:
		return nil, "issuer mismatch"
	}
	return t, ""
}

func (s *Server) federationIntrospect(c *call, req federationTokenRequest) {
	s.federationCheck(c, req, "active")
}

// federationVerify is the legacy path; it answers "valid" instead of "active".
func (s *Server) federationVerify(c *call, req federationTokenRequest) {
	s.federationCheck(c, req, "valid")
}

func (s *Server) federationCheck(c *call, req federationTokenRequest, flag string) {
	s.mu.Lock()
	t, why := s.fedLookupLocked(req, s.Now())
	s.mu.Unlock()
	if t == nil {
		c.reply(http.StatusOK, map[string]any{flag: false, "error": why})
		return
	}
	c.reply(http.StatusOK, map[string]any{
		flag: true, "agent_id": t.agentID, "issuer": t.issuer, "expires_at": ts(t.expiresAt),
	})
}

// federationSession needs an active federated token whose issuer is a
// registered provider of the caller's org.
func (s *Server) federationSession(c *call, req federationTokenRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, why := s.fedLookupLocked(req, s.Now())
	if t == nil {
		c.fail(http.StatusUnauthorized, "federated token inactive: "+why)
		return
	}
	var prov *provider
	for _, p := range s.st.providers.byID {
		if p.OrgID == c.org && p.Issuer == t.issuer {
			prov = p
		}
	}
	if prov == nil {
		c.fail(http.StatusForbidden, fmt.Sprintf("no federation provider registered for issuer %q", t.issuer))
		return
	}
	se := s.newSessionLocked("federation", t.agentID, c.org, []string{"federation:invoke"})
	se.ProviderID, se.Issuer, se.TrustLevel = prov.ID, prov.Issuer, prov.TrustLevel
	c.reply(http.StatusOK, *se)
}

type issueIDTokenRequest struct {
	AgentID  string   `json:"agent_id" wire:"always,nonempty"`
	Audience string   `json:"audience" wire:"truthy"`
	Scopes   []string `json:"scopes" wire:"truthy"`
	TTL      int64    `json:"ttl" wire:"truthy"`
}

func (r issueIDTokenRequest) validate() string {
	if r.TTL == 0 { // omitted: the default lifetime applies
		return ""
	}
	return positiveSecondsErr("ttl", r.TTL)
}

// issueIDToken mints an EdDSA-signed JWT whose issuer is the gateway URL.
// The token is also known to federation introspection afterwards.
func (s *Server) issueIDToken(c *call, req issueIDTokenRequest) {
	ttl := req.TTL
	if ttl == 0 {
		ttl = 300
	}
	now := s.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.issuingAgentLocked(c, req.AgentID, req.Scopes) == nil {
		return
	}
	exp := now.Add(time.Duration(ttl) * time.Second)
	claims := map[string]any{
		"iss": s.gwURL, "sub": req.AgentID, "iat": now.Unix(), "exp": exp.Unix(),
		"jti": s.st.nextID("idt"),
	}
	if req.Audience != "" {
		claims["aud"] = req.Audience
	}
	if len(req.Scopes) > 0 {
		claims["scope"] = strings.Join(req.Scopes, " ")
	}
	jwt := s.signJWT(cardKeyID, claims)
	s.st.fedTokens[jwt] = &fedToken{issuer: s.gwURL, agentID: req.AgentID, expiresAt: exp}
	c.reply(http.StatusOK, map[string]any{"id_token": jwt, "expires_in": ttl, "expires_at": ts(exp)})
}

// signJWS signs payload under the JSON protected header with the fake's
// Ed25519 key and returns the three base64url parts of the JWS.
func (s *Server) signJWS(header string, payload []byte) (protected, body, sig string) {
	enc := base64.RawURLEncoding
	protected, body = enc.EncodeToString([]byte(header)), enc.EncodeToString(payload)
	return protected, body, enc.EncodeToString(ed25519.Sign(s.cardKey, []byte(protected+"."+body)))
}

// signJWT returns an EdDSA JWT of claims signed with the fake's key, named
// kid in its header.
func (s *Server) signJWT(kid string, claims map[string]any) string {
	payload, _ := json.Marshal(claims)
	protected, body, sig := s.signJWS(`{"alg":"EdDSA","typ":"JWT","kid":"`+kid+`"}`, payload)
	return protected + "." + body + "." + sig
}
