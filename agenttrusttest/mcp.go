package agenttrusttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

type mcpServer struct {
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	URL          string   `json:"url"`
	OrgID        string   `json:"org_id"`
	Capabilities []string `json:"capabilities"`
	CreatedAt    ts       `json:"created_at"`
}

type registerMCPServerRequest struct {
	Name         string    `json:"name" wire:"always,nonempty"`
	URL          string    `json:"url" wire:"always"`
	Capabilities *[]string `json:"capabilities"`
}

func (r registerMCPServerRequest) validate() string {
	if !validHTTPURL(r.URL) {
		return `key "url" must be an absolute http(s) URL`
	}
	return ""
}

// validHTTPURL reports whether raw is an absolute http(s) URL with a host.
func validHTTPURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func (s *Server) registerMCPServer(c *call, req registerMCPServerRequest) {
	caps := []string{}
	if req.Capabilities != nil {
		caps = append(caps, *req.Capabilities...)
	}
	srv := &mcpServer{Name: req.Name, URL: req.URL, OrgID: c.org, Capabilities: caps, CreatedAt: ts(s.Now())}
	c.reply(http.StatusCreated, insert(s, &s.st.mcpServers, "mcp", srv, &srv.ID))
}

func (s *Server) listMCPServers(c *call) {
	out := listOf(s, &s.st.mcpServers, func(srv *mcpServer) bool { return srv.OrgID == c.org })
	c.reply(http.StatusOK, map[string]any{"servers": out})
}

// mcpEnvelope is the call_tool body; params is "not None".
type mcpEnvelope struct {
	JSONRPC string          `json:"jsonrpc" wire:"always"`
	ID      int64           `json:"id" wire:"always"`
	Method  string          `json:"method" wire:"always,nonempty"`
	Params  json.RawMessage `json:"params"`
}

func (e mcpEnvelope) validate() string { return rpcVersionErr(e.JSONRPC) }

// callMCP proxies a JSON-RPC call to the registered server's URL. The
// caller must name an active agent in X-Agent-ID (403 otherwise). The body
// is forwarded byte for byte with X-Agent-ID and X-Session-ID, and the
// upstream status and body are returned as they are (502 when unreachable).
func (s *Server) callMCP(c *call, _ mcpEnvelope) {
	agentID := c.r.Header.Get("X-Agent-ID")
	s.mu.Lock()
	srv, ok := s.st.mcpServers.get(c.param("server_id"))
	var target string
	if ok {
		target = srv.URL
	}
	agentStatus, agentMsg := s.agentErrLocked(agentID)
	s.mu.Unlock()
	switch {
	case !ok:
		c.fail(http.StatusNotFound, "mcp server not found")
		return
	case agentID == "":
		c.fail(http.StatusForbidden, "X-Agent-ID header required")
		return
	case agentStatus != 0:
		c.fail(http.StatusForbidden, "agent not authorized: "+agentMsg)
		return
	}

	req, err := http.NewRequestWithContext(c.ctx, http.MethodPost, target, bytes.NewReader(c.body))
	if err != nil {
		c.fail(http.StatusBadGateway, "mcp server unreachable: bad URL")
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Agent-ID", agentID)
	if sid := c.r.Header.Get("X-Session-ID"); sid != "" {
		req.Header.Set("X-Session-ID", sid)
	}
	resp, err := s.outbound.Do(req)
	if err != nil {
		c.fail(http.StatusBadGateway, fmt.Sprintf("mcp server unreachable: %v", err))
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	if err != nil {
		c.fail(http.StatusBadGateway, fmt.Sprintf("mcp server reply: %v", err))
		return
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		c.w.Header().Set("Content-Type", ct)
	}
	c.w.WriteHeader(resp.StatusCode)
	_, _ = c.w.Write(body)
}
