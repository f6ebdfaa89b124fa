package agenttrust

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMCPRegisterServer(t *testing.T) {
	ctx := context.Background()
	reply := scriptReply{status: 201, body: `{"id": "srv-1", "name": "files", "url": "http://mcp", "org_id": "org-1", "capabilities": ["read"], "created_at": "2026-03-01 10:00:00"}`}
	srv := newScriptServer(t, reply)
	c := srv.client(t)
	for _, tc := range []struct {
		name string
		caps []string
		want map[string]any
	}{
		{"nil capabilities omitted", nil, map[string]any{"name": "files", "url": "http://mcp"}},
		{"empty capabilities sent", []string{}, map[string]any{"name": "files", "url": "http://mcp", "capabilities": []any{}}},
		{"capabilities", []string{"read", "write"}, map[string]any{"name": "files", "url": "http://mcp", "capabilities": []any{"read", "write"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.reset(reply)
			s, err := c.MCP.RegisterServer(ctx, MCPRegisterServerParams{Name: "files", URL: "http://mcp", Capabilities: tc.caps})
			require.NoError(t, err)
			r := srv.only(t)
			checkRequest(t, r, http.MethodPost, "/mcp/servers")
			checkBody(t, r, tc.want)
			assert.Equal(t, "srv-1", s.ID, "server = %+v", s)
			assert.Equal(t, "org-1", s.OrgID, "server = %+v", s)
			require.Len(t, s.Capabilities, 1, "server = %+v", s)
			assert.True(t, s.CreatedAt.Equal(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)), "server = %+v", s)
		})
	}
	// The reply is flat: a {"server": ...} wrapper is not unwrapped.
	srv.reset(scriptReply{body: `{"server": {"id": "srv-1"}}`})
	s, err := c.MCP.RegisterServer(ctx, MCPRegisterServerParams{Name: "n", URL: "u"})
	require.NoError(t, err, "wrapped reply: %+v", s)
	assert.Empty(t, s.ID, "wrapped reply: %+v, %v", s, err)
}

func TestMCPListAndRemove(t *testing.T) {
	ctx := context.Background()
	srv := newScriptServer(t)
	c := srv.client(t)
	for _, body := range []string{`[{"id": "s1"}, {"id": "s2"}]`, `{"servers": [{"id": "s1"}, {"id": "s2"}], "total": 2}`} {
		srv.reset(scriptReply{body: body})
		list, err := c.MCP.ListServers(ctx, MCPListServersParams{})
		require.NoError(t, err, "%s: %+v", body, list)
		require.Len(t, list, 2, "%s: %+v, %v", body, list, err)
		assert.Equal(t, "s2", list[1].ID, "%s: %+v, %v", body, list, err)
		checkRequest(t, srv.only(t), http.MethodGet, "/mcp/servers")
	}
	for _, body := range []string{`{"servers": null}`, ``, `null`} {
		srv.reset(scriptReply{body: body})
		list, err := c.MCP.ListServers(ctx, MCPListServersParams{})
		require.NoError(t, err, "%q: %v", body, list)
		require.NotNil(t, list, "%q: %v, %v", body, list, err)
		assert.Empty(t, list, "%q: %v, %v", body, list, err)
	}
	for _, body := range []string{`{"unexpected": "shape"}`, `{"servers": {}}`, `[1]`, `"x"`} {
		srv.reset(scriptReply{body: body})
		_, err := c.MCP.ListServers(ctx, MCPListServersParams{})
		wantCode(t, err, CodeDecode)
	}

	srv.reset(scriptReply{status: 204}, scriptReply{body: "not json"})
	for i := 0; i < 2; i++ {
		assert.NoError(t, c.MCP.RemoveServer(ctx, "s1"), "remove %d", i)
	}
	for _, r := range srv.requests() {
		checkRequest(t, r, http.MethodDelete, "/mcp/servers/s1")
	}
	srv.reset(scriptReply{status: 404, body: `{"error": "server not found"}`})
	err := c.MCP.RemoveServer(ctx, "s1")
	e := wantCode(t, err, CodeNotFound)
	assert.Equal(t, "server not found", e.Message, "remove unknown: %v", err)
	assert.ErrorIs(t, err, ErrNotFound, "remove unknown: %v", err)
}

func TestMCPCallToolWire(t *testing.T) {
	ctx := context.Background()
	reply := scriptReply{body: `{"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "ok"}]}}`}
	srv := newScriptServer(t, reply)
	c := srv.client(t)

	var nilMap map[string]any
	var nilSlice []any
	var nilPtr *struct{ A int }
	var nilRaw json.RawMessage
	type args struct {
		Name string `json:"name"`
	}
	for _, tc := range []struct {
		name   string
		params any
		want   any // nil: params absent
	}{
		{"nil", nil, nil},
		{"nil map", nilMap, nil},
		{"nil slice", nilSlice, nil},
		{"nil pointer", nilPtr, nil},
		{"nil raw", nilRaw, nil},
		{"empty map", map[string]any{}, map[string]any{}},
		{"empty slice", []any{}, []any{}},
		{"tools/call", map[string]any{"name": "search", "arguments": map[string]any{"q": "a&b"}},
			map[string]any{"name": "search", "arguments": map[string]any{"q": "a&b"}}},
		{"raw", json.RawMessage(`{"name":"x"}`), map[string]any{"name": "x"}},
		{"struct", args{Name: "y"}, map[string]any{"name": "y"}},
		{"pointer", &args{Name: "z"}, map[string]any{"name": "z"}},
		{"zero number", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.reset(reply)
			res, err := c.MCP.CallTool(ctx, "srv-1", MCPCallToolParams{AgentID: "agent-1", Method: "tools/call", Params: tc.params})
			require.NoError(t, err)
			r := srv.only(t)
			checkRequest(t, r, http.MethodPost, "/mcp/srv-1")
			want := map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call"}
			keys := []string{"jsonrpc", "id", "method"}
			if tc.want != nil {
				want["params"] = tc.want
				keys = append(keys, "params")
			}
			checkBody(t, r, want)
			assert.Equal(t, keys, keyOrder(t, r.Body))
			got := r.Header.Get("X-Agent-Id")
			assert.Equal(t, "agent-1", got, "X-Agent-ID = %q", got)
			_, ok := r.Header["X-Session-Id"]
			assert.False(t, ok, "X-Session-ID sent without a session")
			assert.Equal(t, `{"content": [{"type": "text", "text": "ok"}]}`, string(res), "result %s", res)
		})
	}

	srv.reset(reply)
	_, err := c.MCP.CallTool(ctx, "srv-1", MCPCallToolParams{AgentID: "agent-1", SessionID: "sess-1", Method: "tools/list"})
	require.NoError(t, err)
	r := srv.only(t)
	assert.Equal(t, "sess-1", r.Header.Get("X-Session-Id"), "headers %v", r.Header)
	assert.Equal(t, "agent-1", r.Header.Get("X-Agent-Id"), "headers %v", r.Header)

	// An unencodable params value is a validation error before any I/O.
	srv.reset(reply)
	_, err = c.MCP.CallTool(ctx, "srv-1", MCPCallToolParams{AgentID: "a", Method: "m", Params: make(chan int)})
	wantCode(t, err, CodeValidation)
	n := len(srv.requests())
	assert.Equal(t, 0, n, "%d requests sent", n)
}

func TestMCPCallToolRequiresAgent(t *testing.T) {
	srv := newScriptServer(t)
	c := srv.client(t)
	_, err := c.MCP.CallTool(context.Background(), "srv-1", MCPCallToolParams{Method: "tools/list"})
	e := wantCode(t, err, CodeValidation)
	assert.Equal(t, "agent_id is required: the MCP proxy authorizes the call by agent identity", e.Message, "message %q status %d", e.Message, e.Status)
	assert.Equal(t, 0, e.Status, "message %q status %d", e.Message, e.Status)
	var ve *ValidationError
	require.ErrorAs(t, err, &ve, "not a *ValidationError: %T", err)
	assert.ErrorIs(t, err, ErrValidation, "not a *ValidationError: %T", err)
	n := len(srv.requests())
	assert.Equal(t, 0, n, "%d requests sent", n)
}

// An agent or session id that cannot be a header value is the caller's
// mistake: a validation error before any I/O, not the NETWORK_ERROR that
// net/http's refusal would become (the "gateway unavailable" class).
func TestMCPCallToolHeaderValues(t *testing.T) {
	srv := newScriptServer(t, scriptReply{status: 200, body: `{"jsonrpc":"2.0","id":"1","result":{}}`})
	c := srv.client(t)
	ctx := context.Background()
	for _, bad := range []string{"a\r\nX-Evil: 1", "a\n", "a\r", "\x00a", "a\x1b", "a\x7f"} {
		for _, p := range []MCPCallToolParams{
			{AgentID: bad, Method: "tools/list"},
			{AgentID: "a", SessionID: bad, Method: "tools/list"},
		} {
			_, err := c.MCP.CallTool(ctx, "srv-1", p)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve, "CallTool(%+q, %+q) = %v, want a validation error", p.AgentID, p.SessionID, err)
			assert.Equal(t, 0, ve.Status, "CallTool(%+q, %+q) = %v, want a validation error", p.AgentID, p.SessionID, err)
			assert.NotErrorIs(t, err, ErrNetwork, "CallTool(%+q, %+q) = %v, want a validation error", p.AgentID, p.SessionID, err)
		}
	}
	n := len(srv.requests())
	assert.Equal(t, 0, n, "%d requests sent", n)
	// A tab and non-ASCII bytes are valid header bytes and go through as is.
	_, err := c.MCP.CallTool(ctx, "srv-1", MCPCallToolParams{AgentID: "a\tb", SessionID: "s\u00e9", Method: "tools/list"})
	require.NoError(t, err)
	r := srv.only(t)
	assert.Equal(t, "a\tb", r.Header.Get("X-Agent-Id"), "headers sent: %q %q", r.Header.Get("X-Agent-Id"), r.Header.Get("X-Session-Id"))
	assert.Equal(t, "s\u00e9", r.Header.Get("X-Session-Id"), "headers sent: %q %q", r.Header.Get("X-Agent-Id"), r.Header.Get("X-Session-Id"))
}

func TestMCPCallToolResults(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ body, want string }{
		{`{"jsonrpc": "2.0", "id": 1, "result": [1, 2]}`, `[1, 2]`},
		{`{"result": "text"}`, `"text"`},
		{`{"result": 3.5}`, `3.5`},
		{`{"result": null}`, `null`},
		{`{"result": {}}`, `{}`},
		{`{"jsonrpc": "2.0", "id": 1, "other": true}`, `{"jsonrpc": "2.0", "id": 1, "other": true}`},
		{``, `{}`},
		{`null`, `{}`},
		{`[1]`, `[1]`},
	} {
		srv := newScriptServer(t, scriptReply{body: tc.body})
		res, err := srv.client(t).MCP.CallTool(ctx, "s", MCPCallToolParams{AgentID: "a", Method: "m"})
		require.NoError(t, err, "%q: %s, %v; want %s", tc.body, res, err, tc.want)
		assert.Equal(t, tc.want, string(res), "%q: %s, %v; want %s", tc.body, res, err, tc.want)
	}
	srv := newScriptServer(t, scriptReply{body: `{"result": `})
	_, err := srv.client(t).MCP.CallTool(ctx, "s", MCPCallToolParams{AgentID: "a", Method: "m"})
	wantCode(t, err, CodeDecode)

	// A policy denial is an HTTP 403.
	srv = newScriptServer(t, scriptReply{status: 403, body: `{"error": "tool denied by policy"}`})
	_, err = srv.client(t).MCP.CallTool(ctx, "s", MCPCallToolParams{AgentID: "a", Method: "m"})
	var ae *AuthorizationError
	require.ErrorAs(t, err, &ae, "403: %v", err)
	assert.Equal(t, "tool denied by policy", ae.Message, "403: %v", err)
}

func TestMCPCallToolNotRepeated(t *testing.T) {
	// call_tool is not safe to repeat: a 503 is returned, not retried, even
	// with retries enabled; an idempotent list is retried.
	srv := newScriptServer(t, scriptReply{status: 503, body: `{"error": "busy"}`})
	c := srv.client(t, WithRetryPolicy(RetryPolicy{MaxRetries: 2, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond}))
	_, err := c.MCP.CallTool(context.Background(), "s", MCPCallToolParams{AgentID: "a", Method: "tools/call"})
	wantCode(t, err, "HTTP_503")
	n := len(srv.requests())
	assert.Equal(t, 1, n, "call_tool sent %d times", n)
	srv.reset(scriptReply{status: 503}, scriptReply{body: `[]`})
	_, err = c.MCP.ListServers(context.Background(), MCPListServersParams{})
	assert.NoError(t, err, "list after one 503")
	n = len(srv.requests())
	assert.Equal(t, 2, n, "list sent %d times, want 2", n)
}

func TestMCPCallToolConcurrentHeaders(t *testing.T) {
	// X-Agent-ID and X-Session-ID belong to their own request only.
	srv := newScriptServer(t, scriptReply{body: `{"result": {}}`})
	c := srv.client(t)
	var wg sync.WaitGroup
	for i := 0; i < 24; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			p := MCPCallToolParams{AgentID: fmt.Sprintf("agent-%d", i), Method: "tools/call", Params: map[string]any{"who": i}}
			if i%2 == 0 {
				p.SessionID = fmt.Sprintf("sess-%d", i)
			}
			_, err := c.MCP.CallTool(context.Background(), "s", p)
			assert.NoError(t, err)
		}(i)
	}
	wg.Wait()
	reqs := srv.requests()
	require.Len(t, reqs, 24, "%d requests", len(reqs))
	for _, r := range reqs {
		who := int(r.bodyMap(t)["params"].(map[string]any)["who"].(float64))
		got := r.Header.Get("X-Agent-Id")
		assert.Equal(t, fmt.Sprintf("agent-%d", who), got, "request %d carried X-Agent-ID %q", who, got)
		wantSess := ""
		if who%2 == 0 {
			wantSess = fmt.Sprintf("sess-%d", who)
		}
		sess := r.Header.Values("X-Session-Id")
		if wantSess == "" {
			assert.Empty(t, sess, "request %d carried X-Session-ID %q", who, sess)
		} else {
			assert.Equal(t, []string{wantSess}, sess, "request %d carried X-Session-ID %q", who, sess)
		}
	}
}

func TestDecodeResult(t *testing.T) {
	type content struct {
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
	}
	v, err := DecodeResult[content](json.RawMessage(`{"content": [{"type": "text", "text": "ok"}]}`))
	require.NoError(t, err, "%+v", v)
	require.Len(t, v.Content, 1, "%+v, %v", v, err)
	assert.Equal(t, "ok", v.Content[0].Text, "%+v, %v", v, err)
	n, err := DecodeResult[int](json.RawMessage(`null`))
	require.NoError(t, err, "null: %v", n)
	assert.Equal(t, 0, n, "null: %v, %v", n, err)
	n, err = DecodeResult[int](nil)
	require.NoError(t, err, "nil: %v", n)
	assert.Equal(t, 0, n, "nil: %v, %v", n, err)
	_, err = DecodeResult[content](json.RawMessage(`[1]`))
	wantCode(t, err, CodeDecode)
	var de *DecodeError
	assert.ErrorAs(t, err, &de, "not a *DecodeError: %T", err)
}
