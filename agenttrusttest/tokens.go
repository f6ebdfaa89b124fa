package agenttrusttest

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"time"
)

type token struct {
	value         string
	id            string
	agentID       string
	orgID         string
	scopes        []string
	sessionID     string
	issuedAt      time.Time
	expiresAt     time.Time
	revokedReason string // "" while not revoked; else the introspection reasoning
}

// inactiveReason returns why the token cannot be used at now, or "".
func (t *token) inactiveReason(now time.Time) string {
	if t.revokedReason != "" {
		return t.revokedReason
	}
	if now.After(t.expiresAt) {
		return "token expired"
	}
	return ""
}

// newTokenValue returns "at_" followed by 32 random bytes in base64url.
func newTokenValue() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("agenttrusttest: crypto/rand failed: " + err.Error())
	}
	return "at_" + base64.RawURLEncoding.EncodeToString(b)
}

type issueTokenRequest struct {
	AgentID   string   `json:"agent_id" wire:"always,nonempty"`
	Scopes    []string `json:"scopes" wire:"always"`
	TTL       int64    `json:"ttl" wire:"always"`
	SessionID string   `json:"session_id" wire:"truthy"`
}

func (r issueTokenRequest) validate() string { return positiveSecondsErr("ttl", r.TTL) }

type tokenReply struct {
	Token     string   `json:"token"`
	AgentID   string   `json:"agent_id"`
	Scope     []string `json:"scope"`
	IssuedAt  ts       `json:"issued_at"`
	ExpiresAt ts       `json:"expires_at"`
	TokenID   string   `json:"token_id"`
}

func (s *Server) issueToken(c *call, req issueTokenRequest) {
	now := s.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ag := s.issuingAgentLocked(c, req.AgentID, req.Scopes)
	if ag == nil {
		return
	}
	t := &token{
		value:     newTokenValue(),
		id:        s.st.nextID("tok"),
		agentID:   ag.ID,
		orgID:     ag.OrgID,
		scopes:    append([]string{}, req.Scopes...),
		sessionID: req.SessionID,
		issuedAt:  now,
		expiresAt: now.Add(time.Duration(req.TTL) * time.Second),
	}
	s.st.tokens[t.value] = t
	c.reply(http.StatusOK, tokenReply{
		Token: t.value, AgentID: t.agentID, Scope: t.scopes,
		IssuedAt: ts(t.issuedAt), ExpiresAt: ts(t.expiresAt), TokenID: t.id,
	})
}

// issuingAgentLocked returns the agent a token is issued for when it is
// active and every requested scope is among its capabilities; otherwise it
// answers the failure (404 or 403) and returns nil.
func (s *Server) issuingAgentLocked(c *call, id string, scopes []string) *agent {
	ag := s.activeAgentLocked(c, id)
	if ag == nil {
		return nil
	}
	if sc, bad := firstOutside(scopes, ag.Capabilities); bad {
		c.fail(http.StatusForbidden, fmt.Sprintf("scope %q is not within the agent's capabilities", sc))
		return nil
	}
	return ag
}

type introspectRequest struct {
	Token          string   `json:"token" wire:"always"`
	Target         *string  `json:"target" wire:"always,nullable"`
	RequiredScopes []string `json:"required_scopes" wire:"always"`
}

func (r introspectRequest) validate() string {
	if r.Target != nil && *r.Target == "" {
		return `key "target" must be null when no target is given`
	}
	return ""
}

// introspection rules, in order: unknown token, revoked (token or agent),
// expired (the server clock is strictly after expires_at), a required scope
// the token lacks, and a target outside the agent's metadata
// "allowed_targets" (agents without that key accept any target).
func (s *Server) introspectToken(c *call, req introspectRequest) {
	now := s.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	inactive := func(reason string) {
		c.reply(http.StatusOK, map[string]any{"active": false, "reasoning": reason})
	}
	t, ok := s.st.tokens[req.Token]
	if !ok {
		inactive("unknown token")
		return
	}
	if r := t.inactiveReason(now); r != "" {
		inactive(r)
		return
	}
	if sc, missing := firstOutside(req.RequiredScopes, t.scopes); missing {
		inactive("scope missing: " + sc)
		return
	}
	if req.Target != nil {
		if ag, ok := s.st.agents.get(t.agentID); ok {
			if allowed, restricted := ag.allowedTargets(); restricted {
				if _, outside := firstOutside([]string{*req.Target}, allowed); outside {
					inactive("target mismatch")
					return
				}
			}
		}
	}
	c.reply(http.StatusOK, map[string]any{
		"active": true, "agent_id": t.agentID, "org_id": t.orgID,
		"scopes": t.scopes, "expires_at": ts(t.expiresAt),
	})
}

type revokeTokenRequest struct {
	Token  string `json:"token" wire:"always"`
	Reason string `json:"reason" wire:"always"`
}

func (s *Server) revokeToken(c *call, req revokeTokenRequest) {
	s.mu.Lock()
	t, ok := s.st.tokens[req.Token]
	if ok && t.revokedReason == "" {
		t.revokedReason = "token revoked"
	}
	s.mu.Unlock()
	if !ok {
		c.fail(http.StatusNotFound, "token not found")
		return
	}
	c.reply(http.StatusOK, map[string]any{"revoked": true})
}

// activeTokenLocked returns the token if it is known and active at now.
func (s *Server) activeTokenLocked(value string, now time.Time) (*token, string) {
	t, ok := s.st.tokens[value]
	if !ok {
		return nil, "unknown token"
	}
	if r := t.inactiveReason(now); r != "" {
		return nil, r
	}
	return t, ""
}
