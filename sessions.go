package agenttrust

import (
	"context"
	"net/http"
)

// SessionsService opens and reads MCP and API sessions (gateway).
type SessionsService service

// InitSession opens an MCP session: POST /mcp/sessions/init.
func (s *SessionsService) InitSession(ctx context.Context, agentID, serverID string, opts ...RequestOption) (*Session, error) {
	body := struct {
		AgentID  string `json:"agent_id"`
		ServerID string `json:"server_id"`
	}{agentID, serverID}
	return call[Session](ctx, s.client, &request{method: http.MethodPost, path: "/mcp/sessions/init", body: body}, "", opts)
}

// GetSession reads a session: GET /mcp/sessions/{session_id}.
func (s *SessionsService) GetSession(ctx context.Context, sessionID string, opts ...RequestOption) (*Session, error) {
	return callAt[Session](ctx, s.client, http.MethodGet, "/mcp/sessions/{session_id}", sessionID, "", opts)
}

// InitAPISession opens an API session from a token:
// POST /api/v1/agenttrust/api-sessions/init.
func (s *SessionsService) InitAPISession(ctx context.Context, token string, opts ...RequestOption) (*Session, error) {
	body := struct {
		Token string `json:"token"`
	}{token}
	return call[Session](ctx, s.client, &request{method: http.MethodPost, path: "/api/v1/agenttrust/api-sessions/init", body: body, secrets: []string{token}}, "", opts)
}
