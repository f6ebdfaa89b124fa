package agenttrusttest

import (
	"net/http"
	"time"
)

type session struct {
	SessionID      string   `json:"session_id"`
	AgentID        string   `json:"agent_id"`
	OrgID          string   `json:"org_id"`
	Source         string   `json:"source"`
	ServerID       string   `json:"server_id,omitempty"`
	DelegationID   string   `json:"delegation_id,omitempty"`
	ProviderID     string   `json:"provider_id,omitempty"`
	Issuer         string   `json:"issuer,omitempty"`
	TrustLevel     string   `json:"trust_level,omitempty"`
	Mode           string   `json:"mode"`
	AllowedActions []string `json:"allowed_actions"`
	ScopeCeiling   []string `json:"scope_ceiling"`
	TotalCalls     int      `json:"total_calls"`
	ReadCalls      int      `json:"read_calls"`
	WriteCalls     int      `json:"write_calls"`
	DeniedCalls    int      `json:"denied_calls"`
	CreatedAt      ts       `json:"created_at"`
	LastActivityAt ts       `json:"last_activity_at"`
}

// count updates the counters after an action check in the session.
func (se *session) count(effect string, allowed bool, now time.Time) {
	se.TotalCalls++
	switch {
	case !allowed:
		se.DeniedCalls++
	case effect == "read":
		se.ReadCalls++
	case effect != "":
		se.WriteCalls++
	}
	se.LastActivityAt = ts(now)
}

// newSessionLocked stores a read-only session for agentID.
func (s *Server) newSessionLocked(source, agentID, orgID string, scopes []string) *session {
	now := ts(s.Now())
	if scopes == nil {
		scopes = []string{}
	}
	se := &session{
		SessionID: s.st.nextID("sess"), AgentID: agentID, OrgID: orgID, Source: source,
		Mode: "read_only", AllowedActions: scopes, ScopeCeiling: scopes,
		CreatedAt: now, LastActivityAt: now,
	}
	s.st.sessions.put(se.SessionID, se)
	return se
}

type initMCPSessionRequest struct {
	AgentID  string `json:"agent_id" wire:"always,nonempty"`
	ServerID string `json:"server_id" wire:"always,nonempty"`
}

// initMCPSession opens an MCP session for an active agent. The server id
// is recorded but need not name a registered MCP server.
func (s *Server) initMCPSession(c *call, req initMCPSessionRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ag := s.activeAgentLocked(c, req.AgentID)
	if ag == nil {
		return
	}
	se := s.newSessionLocked("mcp", ag.ID, ag.OrgID, ag.Capabilities)
	se.ServerID = req.ServerID
	c.reply(http.StatusOK, *se)
}

func (s *Server) getSession(c *call) {
	if se, ok := getOr404(s, c, &s.st.sessions, "session_id", "session not found"); ok {
		c.reply(http.StatusOK, se)
	}
}

type initAPISessionRequest struct {
	Token string `json:"token" wire:"always"`
}

// initAPISession opens an API session from an active at_ token; any other
// token is a 401.
func (s *Server) initAPISession(c *call, req initAPISessionRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, why := s.activeTokenLocked(req.Token, s.Now())
	if t == nil {
		c.fail(http.StatusUnauthorized, "invalid token: "+why)
		return
	}
	se := s.newSessionLocked("api", t.agentID, t.orgID, t.scopes)
	c.reply(http.StatusOK, *se)
}
