package agenttrust

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// MCPService registers MCP servers with the gateway and calls their tools
// through its proxy.
type MCPService service

// MCPRegisterServerParams are the arguments of MCP.RegisterServer.
type MCPRegisterServerParams struct {
	Name string
	// URL is where the gateway reaches the MCP server.
	URL string
	// Capabilities are sent when non-nil; an empty, non-nil slice sends [].
	Capabilities []string
}

type mcpRegisterWire struct {
	Name         string    `json:"name"`
	URL          string    `json:"url"`
	Capabilities *[]string `json:"capabilities,omitempty"`
}

// RegisterServer registers an MCP server: POST /mcp/servers.
func (s *MCPService) RegisterServer(ctx context.Context, p MCPRegisterServerParams, opts ...RequestOption) (*MCPServer, error) {
	body := &mcpRegisterWire{Name: p.Name, URL: p.URL}
	if p.Capabilities != nil {
		body.Capabilities = &p.Capabilities
	}
	return call[MCPServer](ctx, s.client, &request{method: http.MethodPost, path: "/mcp/servers", body: body}, "", opts)
}

// MCPListServersParams are the arguments of MCP.ListServers; there are none
// yet.
type MCPListServersParams struct{}

// ListServers lists the registered MCP servers: GET /mcp/servers.
func (s *MCPService) ListServers(ctx context.Context, _ MCPListServersParams, opts ...RequestOption) ([]MCPServer, error) {
	return list[MCPServer](ctx, s.client, &request{path: "/mcp/servers"}, "servers", "", opts)
}

// RemoveServer unregisters an MCP server: DELETE /mcp/servers/{server_id}.
// Any 2xx reply is success; its body is not read.
func (s *MCPService) RemoveServer(ctx context.Context, serverID string, opts ...RequestOption) error {
	return deleteAt(ctx, s.client, "/mcp/servers/{server_id}", serverID, opts)
}

// MCPCallToolParams are the arguments of MCP.CallTool.
type MCPCallToolParams struct {
	// AgentID is the calling agent, sent as X-Agent-ID; the gateway
	// authorizes the call by it. Required. Like SessionID, it must be a
	// valid header value: a control character (CR, LF, ...) is a
	// *ValidationError before any I/O.
	AgentID string
	// Method is the JSON-RPC method, e.g. "tools/call" or "tools/list".
	Method string
	// Params is sent verbatim as the JSON-RPC params, e.g.
	// map[string]any{"name": "search", "arguments": map[string]any{...}}.
	// It is omitted only when nil (a nil interface, map, slice, pointer or
	// json.RawMessage); an empty map sends {}.
	Params any
	// SessionID is sent as X-Session-ID when non-empty.
	SessionID string
}

// errMCPAgentID is the Python SDK's ValueError text, kept word for word.
const errMCPAgentID = "agent_id is required: the MCP proxy authorizes the call by agent identity"

// CallTool sends a JSON-RPC request to an MCP server through the gateway's
// proxy: POST /mcp/{server_id}. It returns the reply's result, whatever its
// JSON type (use DecodeResult to read it into a type), or the whole reply
// when it has no result member. A JSON-RPC error in the reply is a
// *JSONRPCError; a policy denial is typically an HTTP 403, an
// *AuthorizationError.
//
// The call is not safe to repeat: it is re-sent only when the connection
// failed before anything was written.
func (s *MCPService) CallTool(ctx context.Context, serverID string, p MCPCallToolParams, opts ...RequestOption) (json.RawMessage, error) {
	if p.AgentID == "" {
		return nil, validationErr(errMCPAgentID)
	}
	path, err := buildPath("/mcp/{server_id}", serverID)
	if err != nil {
		return nil, err
	}
	params := p.Params
	if isNil(params) {
		params = nil
	}
	h := http.Header{"X-Agent-Id": {p.AgentID}}
	if p.SessionID != "" {
		h["X-Session-Id"] = []string{p.SessionID}
	}
	resp, err := s.client.do(ctx, &request{method: http.MethodPost, path: path, header: h, body: newRPCRequest(p.Method, params)}, opts)
	if err != nil {
		return nil, err
	}
	return rpcResult(resp)
}

// MCPServer is a registered MCP server.
type MCPServer struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	URL          string    `json:"url"`
	OrgID        string    `json:"org_id"`
	Capabilities []string  `json:"capabilities"`
	CreatedAt    time.Time `json:"created_at"`
}

// UnmarshalJSON reads timestamps leniently.
func (m *MCPServer) UnmarshalJSON(b []byte) error {
	*m = MCPServer{}
	return unmarshalModel(b, m)
}
