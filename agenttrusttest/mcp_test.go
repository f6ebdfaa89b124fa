package agenttrusttest

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// rpcRecorder is a loopback JSON-RPC server that records what reaches it.
type rpcRecorder struct {
	mu      sync.Mutex
	bodies  []string
	headers []http.Header
}

func (rr *rpcRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rr.mu.Lock()
	rr.bodies = append(rr.bodies, string(body))
	rr.headers = append(rr.headers, r.Header.Clone())
	rr.mu.Unlock()
	var env struct {
		ID     int    `json:"id"`
		Method string `json:"method"`
	}
	_ = json.Unmarshal(body, &env)
	w.Header().Set("Content-Type", "application/json")
	if env.Method == "boom" {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, `{"error": "upstream broke"}`)
		return
	}
	fmt.Fprintf(w, `{"jsonrpc": "2.0", "id": %d, "result": {"tools": [{"name": "echo"}], "method": %q}}`, env.ID, env.Method)
}

func TestMCPProxy(t *testing.T) {
	rec := &rpcRecorder{}
	upstream := httptest.NewServer(rec)
	defer upstream.Close()

	srv := NewTestServer(t)
	c := newClient(t, srv)
	agentID := srv.CreateAgent("bot")

	reg := c.gw("POST", "/mcp/servers", fmt.Sprintf(`{"name": "tools", "url": %q, "capabilities": []}`, upstream.URL)).must(t, 201)
	serverID := reg.str("id")
	require.NotEqual(t, "", serverID, "register %s", reg.raw)
	require.Equal(t, upstream.URL, reg.str("url"), "register %s", reg.raw)
	require.Equal(t, DefaultOrgID, reg.str("org_id"), "register %s", reg.raw)
	l := c.gw("GET", "/mcp/servers", "").must(t, 200)
	require.Len(t, l.json["servers"].([]any), 1, "list %s", l.raw)

	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"q":"<&>"}}}`
	call := func(body string, hdr map[string]string) resp {
		return c.doHeaders("POST", srv.URL()+"/mcp/"+serverID, body, hdr)
	}
	r := call(body, map[string]string{"X-Agent-ID": agentID, "x-session-id": "sess-9"}).must(t, 200)
	require.Equal(t, "tools/call", r.json["result"].(map[string]any)["method"], "reply %s", r.raw)
	rec.mu.Lock()
	gotBody, gotHdr := rec.bodies[0], rec.headers[0]
	rec.mu.Unlock()
	require.Equal(t, body, gotBody, "forwarded body %q, want %q", gotBody, body)
	require.Equal(t, agentID, gotHdr.Get("X-Agent-ID"), "forwarded headers %v", gotHdr)
	require.Equal(t, "sess-9", gotHdr.Get("X-Session-ID"), "forwarded headers %v", gotHdr)
	require.Equal(t, "", gotHdr.Get("X-API-Key"), "forwarded headers %v", gotHdr)

	// The upstream status and body come back as they are.
	r = call(`{"jsonrpc":"2.0","id":1,"method":"boom"}`, map[string]string{"X-Agent-ID": agentID}).must(t, 500)
	require.Equal(t, "upstream broke", r.errMsg(), "passthrough %s", r.raw)
	// Agent identity is required.
	call(body, nil).must(t, 403)
	call(body, map[string]string{"X-Agent-ID": "nobody"}).must(t, 403)
	// Envelope strictness.
	r = call(`{"jsonrpc":"2.0","id":1,"method":"x","params":null}`, map[string]string{"X-Agent-ID": agentID})
	require.EqualValues(t, 400, r.status, "null params: %d %s", r.status, r.raw)
	require.Equal(t, `key "params" must be a JSON value`, r.errMsg(), "null params: %d %s", r.status, r.raw)
	call(`{"jsonrpc":"1.0","id":1,"method":"x"}`, map[string]string{"X-Agent-ID": agentID}).must(t, 400)
	c.doHeaders("POST", srv.URL()+"/mcp/mcp-404", body, map[string]string{"X-Agent-ID": agentID}).must(t, 404)

	// An unreachable server is a 502.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := "http://" + ln.Addr().String()
	ln.Close()
	deadID := c.gw("POST", "/mcp/servers", fmt.Sprintf(`{"name": "dead", "url": %q}`, dead)).must(t, 201).str("id")
	c.doHeaders("POST", srv.URL()+"/mcp/"+deadID, body, map[string]string{"X-Agent-ID": agentID}).must(t, 502)

	c.gw("DELETE", "/mcp/servers/"+serverID, "").must(t, 204)
	c.gw("DELETE", "/mcp/servers/"+serverID, "").must(t, 404)
	c.gw("POST", "/mcp/servers", `{"name": "bad", "url": "not a url"}`).must(t, 400)
}

// TestCloseReleasesOutboundConnections checks that Close also drops the
// keep-alive connections of the MCP proxy while the upstream is still up.
func TestCloseReleasesOutboundConnections(t *testing.T) {
	upstream := httptest.NewServer(&rpcRecorder{})
	defer upstream.Close()
	before := goleak.IgnoreCurrent()

	srv, err := NewServer()
	require.NoError(t, err)
	agentID := srv.CreateAgent("bot")
	tr := &http.Transport{}
	hc := &http.Client{Transport: tr}
	reg := fmt.Sprintf(`{"name": "tools", "url": %q}`, upstream.URL)
	req, _ := http.NewRequest("POST", srv.URL()+"/mcp/servers", strings.NewReader(reg))
	req.Header.Set("X-API-Key", srv.APIKey())
	req.Header.Set("Content-Type", "application/json")
	res, err := hc.Do(req)
	require.NoError(t, err)
	var server struct{ ID string }
	_ = json.NewDecoder(res.Body).Decode(&server)
	res.Body.Close()

	req, _ = http.NewRequest("POST", srv.URL()+"/mcp/"+server.ID, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	req.Header.Set("X-API-Key", srv.APIKey())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Agent-ID", agentID)
	res, err = hc.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	require.EqualValues(t, 200, res.StatusCode, "status %d", res.StatusCode)

	srv.Close()
	tr.CloseIdleConnections()
	goleak.VerifyNone(t, before)
}
