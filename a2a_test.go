package agenttrust

import (
	"context"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestA2ATaskWire(t *testing.T) {
	ctx := context.Background()
	reply := scriptReply{body: `{"jsonrpc": "2.0", "id": 1, "result": {"id": "t1", "source_agent_id": "a1", "target_agent_id": "a2",
		"status": "completed", "message": "hi", "artifacts": [{"k": 1}], "metadata": {"m": true},
		"created_at": "2026-03-01T10:00:00.123456789123Z", "updated_at": "bogus"}}`}
	srv := newScriptServer(t, reply)
	c := srv.client(t)

	tests := []struct {
		name       string
		call       func() (*A2ATask, error)
		wantMethod string
		wantParams map[string]any
	}{
		{"send", func() (*A2ATask, error) {
			return c.A2A.SendTask(ctx, A2ASendTaskParams{SourceAgentID: "a1", TargetAgentID: "a2", Message: "<b>&</b>"})
		}, "tasks/send", map[string]any{"source_agent_id": "a1", "target_agent_id": "a2", "message": "<b>&</b>"}},
		{"send empty metadata omitted", func() (*A2ATask, error) {
			return c.A2A.SendTask(ctx, A2ASendTaskParams{SourceAgentID: "a1", TargetAgentID: "a2", Message: "m", Metadata: map[string]any{}})
		}, "tasks/send", map[string]any{"source_agent_id": "a1", "target_agent_id": "a2", "message": "m"}},
		{"send metadata", func() (*A2ATask, error) {
			return c.A2A.SendTask(ctx, A2ASendTaskParams{SourceAgentID: "a1", TargetAgentID: "a2", Message: "m", Metadata: map[string]any{"p": 1}})
		}, "tasks/send", map[string]any{"source_agent_id": "a1", "target_agent_id": "a2", "message": "m", "metadata": map[string]any{"p": 1}}},
		{"get", func() (*A2ATask, error) { return c.A2A.GetTask(ctx, "t1") },
			"tasks/get", map[string]any{"task_id": "t1"}},
		{"cancel", func() (*A2ATask, error) { return c.A2A.CancelTask(ctx, "t1") },
			"tasks/cancel", map[string]any{"task_id": "t1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv.reset(reply)
			task, err := tc.call()
			require.NoError(t, err)
			r := srv.only(t)
			checkRequest(t, r, http.MethodPost, "/a2a")
			checkBody(t, r, map[string]any{"jsonrpc": "2.0", "id": 1, "method": tc.wantMethod, "params": tc.wantParams})
			assert.Equal(t, []string{"jsonrpc", "id", "method", "params"}, keyOrder(t, r.Body))
			if tc.wantMethod == "tasks/send" {
				got := string(r.Body)
				assert.True(t, regexp.MustCompile(`"id":1,`).MatchString(got), "id is not the integer 1: %s", got)
				assert.False(t, regexp.MustCompile(`\\u003c|\\u0026`).Match(r.Body), "HTML-escaped body: %s", r.Body)
			}
			want := time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.UTC)
			assert.Equal(t, "t1", task.ID, "task = %+v", task)
			assert.Equal(t, "completed", task.Status, "task = %+v", task)
			assert.Equal(t, "hi", task.Message, "task = %+v", task)
			assert.Len(t, task.Artifacts, 1, "task = %+v", task)
			assert.Equal(t, true, task.Metadata["m"], "task = %+v", task)
			assert.True(t, task.CreatedAt.Equal(want), "task = %+v", task)
			assert.True(t, task.UpdatedAt.IsZero(), "task = %+v", task)
		})
	}
}

func TestA2ATaskReplies(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, body string
		wantID     string
		wantStatus string
	}{
		{"null result", `{"jsonrpc": "2.0", "id": 1, "result": null}`, "", "pending"},
		{"empty body", ``, "", "pending"},
		{"no status", `{"result": {"id": "t9"}}`, "t9", "pending"},
		{"null status", `{"result": {"id": "t9", "status": null}}`, "t9", "pending"},
		{"no result member", `{"id": "t7", "status": "completed"}`, "t7", "completed"},
		{"null error", `{"error": null, "result": {"id": "t8"}}`, "t8", "pending"},
		{"other reply id", `{"jsonrpc": "2.0", "id": "zz", "result": {"id": "t1"}}`, "t1", "pending"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newScriptServer(t, scriptReply{body: tc.body})
			task, err := srv.client(t).A2A.GetTask(ctx, "t1")
			require.NoError(t, err)
			assert.Equal(t, tc.wantID, task.ID, "task = %+v", task)
			assert.Equal(t, tc.wantStatus, task.Status, "task = %+v", task)
		})
	}
	for _, body := range []string{`not json`, `{"result": [1]}`, `{"result": "done"}`, `[1]`, `{"result": {"id": 5}}`} {
		srv := newScriptServer(t, scriptReply{body: body})
		_, err := srv.client(t).A2A.GetTask(ctx, "t1")
		wantCode(t, err, CodeDecode)
	}
}

func TestJSONRPCErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, body string
		code       int
		rpcMessage string
		message    string
		data       string
	}{
		{"object", `{"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "bad params", "data": {"field": "task_id"}}}`,
			-32602, "bad params", "bad params", `{"field": "task_id"}`},
		{"error wins over result", `{"error": {"code": -32000, "message": "boom"}, "result": {"id": "t1"}}`,
			-32000, "boom", "boom", ""},
		{"no message", `{"error": {"code": -32602}}`, -32602, "", "JSON-RPC error -32602", ""},
		{"empty message", `{"error": {"code": 7, "message": ""}}`, 7, "", "JSON-RPC error 7", ""},
		{"string", `{"error": "task not found"}`, 0, "task not found", "task not found", ""},
		{"odd types", `{"error": {"code": "x", "message": 5, "data": null}}`, 0, "", "JSON-RPC error 0", ""},
		{"float code", `{"error": {"code": -32600.0, "message": "m"}}`, -32600, "m", "m", ""},
		{"scalar error", `{"error": 42}`, 0, "", "JSON-RPC error 0", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newScriptServer(t, scriptReply{body: tc.body, header: map[string]string{"X-Request-Id": "req-7"}})
			c := srv.client(t)
			_, errA2A := c.A2A.GetTask(ctx, "t1")
			_, errMsg := c.A2A.SendMessage(ctx, "a1", A2ASendMessageParams{Text: "hi"})
			_, errMCP := c.MCP.CallTool(ctx, "s1", MCPCallToolParams{AgentID: "a1", Method: "tools/list"})
			for _, err := range []error{errA2A, errMsg, errMCP} {
				var rpc *JSONRPCError
				require.ErrorAs(t, err, &rpc, "error %v (%T) is not a *JSONRPCError", err, err)
				assert.ErrorIs(t, err, ErrJSONRPC, "sentinels wrong for %v", err)
				assert.ErrorIs(t, err, ErrAgentTrust, "sentinels wrong for %v", err)
				assert.NotErrorIs(t, err, ErrDecode, "sentinels wrong for %v", err)
				e := wantCode(t, err, CodeJSONRPC)
				assert.Equal(t, tc.code, rpc.RPCCode, "got code %d message %q/%q data %q", rpc.RPCCode, rpc.RPCMessage, e.Message, rpc.RPCData)
				assert.Equal(t, tc.rpcMessage, rpc.RPCMessage, "got code %d message %q/%q data %q", rpc.RPCCode, rpc.RPCMessage, e.Message, rpc.RPCData)
				assert.Equal(t, tc.message, e.Message, "got code %d message %q/%q data %q", rpc.RPCCode, rpc.RPCMessage, e.Message, rpc.RPCData)
				assert.Equal(t, tc.data, string(rpc.RPCData), "got code %d message %q/%q data %q", rpc.RPCCode, rpc.RPCMessage, e.Message, rpc.RPCData)
				assert.Equal(t, 200, e.Status, "status %d request %q body %q", e.Status, e.RequestID, e.Body)
				assert.Equal(t, "req-7", e.RequestID, "status %d request %q body %q", e.Status, e.RequestID, e.Body)
				assert.Equal(t, tc.body, string(e.Body), "status %d request %q body %q", e.Status, e.RequestID, e.Body)
			}
		})
	}
	// A JSON-RPC error in a non-2xx body is an HTTP error with its message.
	srv := newScriptServer(t, scriptReply{status: 500, body: `{"jsonrpc": "2.0", "id": 1, "error": {"code": -32603, "message": "internal"}}`})
	_, err := srv.client(t).A2A.GetTask(ctx, "t1")
	e := wantCode(t, err, "HTTP_500")
	assert.Equal(t, "internal", e.Message, "message %q", e.Message)
	assert.NotErrorIs(t, err, ErrJSONRPC, "an HTTP 500 matches ErrJSONRPC")
}

func TestA2ASendMessage(t *testing.T) {
	ctx := context.Background()
	task := `{"jsonrpc": "2.0", "id": 1, "result": {"kind": "task", "id": "task-1", "contextId": "ctx-1",
		"status": {"state": "completed", "timestamp": "2026-03-01T10:00:00.5"},
		"history": [{"role": "user"}, {"role": "agent"}], "artifacts": [{"artifactId": "a", "parts": []}]}}`
	srv := newScriptServer(t, scriptReply{body: task})
	c := srv.client(t)

	got, err := c.A2A.SendMessage(ctx, "agent 1/x", A2ASendMessageParams{Text: "hi"})
	require.NoError(t, err)
	r := srv.only(t)
	checkRequest(t, r, http.MethodPost, "/a2a/agents/agent%201%2Fx")
	body := r.bodyMap(t)
	msg := body["params"].(map[string]any)["message"].(map[string]any)
	id, _ := msg["messageId"].(string)
	assert.True(t, uuidV4.MatchString(id), "messageId %q is not a lowercase UUIDv4", id)
	checkBody(t, r, map[string]any{"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": map[string]any{
		"message": map[string]any{"role": "user", "parts": []any{map[string]any{"kind": "text", "text": "hi"}}, "messageId": id},
	}})
	assert.Equal(t, "task-1", got.ID, "task = %+v", got)
	assert.Equal(t, "ctx-1", got.ContextID, "task = %+v", got)
	assert.Equal(t, "completed", got.State, "task = %+v", got)
	assert.Equal(t, "2026-03-01T10:00:00.5", got.StatusTimestamp, "task = %+v", got)
	assert.Len(t, got.History, 2, "task = %+v", got)
	assert.Len(t, got.Artifacts, 1, "task = %+v", got)
	assert.Equal(t, "completed", got.Status["state"], "task = %+v", got)
	assert.NotEmpty(t, got.Raw, "task = %+v", got)

	// A second call gets a fresh id; given ids are sent verbatim, in order.
	srv.reset(scriptReply{body: task})
	_, err = c.A2A.SendMessage(ctx, "a1", A2ASendMessageParams{Text: "more", MessageID: "m-1", TaskID: "task-1"})
	require.NoError(t, err)
	r = srv.only(t)
	checkBody(t, r, map[string]any{"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": map[string]any{
		"message": map[string]any{"role": "user", "parts": []any{map[string]any{"kind": "text", "text": "more"}}, "messageId": "m-1", "taskId": "task-1"},
	}})
	inner := r.bodyMap(t)["params"].(map[string]any)
	assert.Len(t, inner, 1, "params carry more than the message: %v", inner)
	raw := regexp.MustCompile(`"message":(\{.*\})\}\}$`).FindSubmatch(r.Body)
	require.NotNil(t, raw, "no message object in %s", r.Body)
	assert.Equal(t, []string{"role", "parts", "messageId", "taskId"}, keyOrder(t, raw[1]))

	ids := map[string]bool{}
	for i := 0; i < 3; i++ {
		srv.reset(scriptReply{body: task})
		_, err := c.A2A.SendMessage(ctx, "a1", A2ASendMessageParams{Text: "x"})
		require.NoError(t, err)
		m := srv.only(t).bodyMap(t)["params"].(map[string]any)["message"].(map[string]any)
		ids[m["messageId"].(string)] = true
	}
	assert.Len(t, ids, 3, "message ids repeat: %v", ids)
}

func TestA2ASendMessageReplies(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, body, id, state, raw string
	}{
		{"message reply", `{"result": {"kind": "message", "messageId": "m9", "role": "agent", "parts": [{"kind": "text", "text": "ok"}]}}`,
			"", "", `{"kind": "message", "messageId": "m9", "role": "agent", "parts": [{"kind": "text", "text": "ok"}]}`},
		{"null result", `{"result": null}`, "", "", `{}`},
		{"status not an object", `{"result": {"id": "t1", "status": "working"}}`, "t1", "", `{"id": "t1", "status": "working"}`},
		{"state not a string", `{"result": {"id": "t1", "status": {"state": 3, "timestamp": 5}}}`, "t1", "", `{"id": "t1", "status": {"state": 3, "timestamp": 5}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newScriptServer(t, scriptReply{body: tc.body})
			got, err := srv.client(t).A2A.SendMessage(ctx, "a1", A2ASendMessageParams{Text: "hi"})
			require.NoError(t, err)
			assert.Equal(t, tc.id, got.ID, "task = %+v (raw %s)", got, got.Raw)
			assert.Equal(t, tc.state, got.State, "task = %+v (raw %s)", got, got.Raw)
			assert.Empty(t, got.StatusTimestamp, "task = %+v (raw %s)", got, got.Raw)
			assert.Equal(t, tc.raw, string(got.Raw), "task = %+v (raw %s)", got, got.Raw)
			assert.NotNil(t, got.Status, "task = %+v (raw %s)", got, got.Raw)
		})
	}
}
