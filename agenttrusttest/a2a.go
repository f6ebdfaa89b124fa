package agenttrusttest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// JSON-RPC and A2A error codes.
const (
	rpcMethodNotFound = -32601
	rpcInvalidParams  = -32602
	a2aTaskNotFound   = -32001 // A2A TaskNotFoundError
	a2aNotCancelable  = -32002 // A2A TaskNotCancelableError
)

// rpcEnvelope is the A2A request envelope: every key is always sent.
type rpcEnvelope struct {
	JSONRPC string          `json:"jsonrpc" wire:"always"`
	ID      int64           `json:"id" wire:"always"`
	Method  string          `json:"method" wire:"always,nonempty"`
	Params  json.RawMessage `json:"params" wire:"always"`
}

func (e rpcEnvelope) validate() string { return rpcVersionErr(e.JSONRPC) }

// rpcVersionErr is the validation message of a JSON-RPC envelope whose
// jsonrpc is not "2.0", or "".
func rpcVersionErr(v string) string {
	if v != "2.0" {
		return `key "jsonrpc" must be "2.0"`
	}
	return ""
}

func (c *call) rpcResult(id int64, result any) {
	c.reply(http.StatusOK, map[string]any{"jsonrpc": "2.0", "id": id, "result": result})
}

func (c *call) rpcError(id int64, code int, msg string) {
	c.reply(http.StatusOK, map[string]any{"jsonrpc": "2.0", "id": id, "error": map[string]any{"code": code, "message": msg}})
}

type a2aTask struct {
	ID            string         `json:"id"`
	SourceAgentID string         `json:"source_agent_id"`
	TargetAgentID string         `json:"target_agent_id"`
	Status        string         `json:"status"`
	Message       string         `json:"message"`
	Artifacts     []any          `json:"artifacts"`
	Metadata      map[string]any `json:"metadata"`
	CreatedAt     ts             `json:"created_at"`
	UpdatedAt     ts             `json:"updated_at"`
}

type sendTaskParams struct {
	SourceAgentID string         `json:"source_agent_id" wire:"always,nonempty"`
	TargetAgentID string         `json:"target_agent_id" wire:"always,nonempty"`
	Message       string         `json:"message" wire:"always"`
	Metadata      map[string]any `json:"metadata" wire:"truthy"`
}

type taskIDParams struct {
	TaskID string `json:"task_id" wire:"always,nonempty"`
}

// a2a serves the legacy AgentTrust task methods. Envelope errors are HTTP
// 400; method and parameter errors are JSON-RPC errors in a 200.
func (s *Server) a2a(c *call, env rpcEnvelope) {
	switch env.Method {
	case "tasks/send":
		var p sendTaskParams
		if !c.rpcParams(env, &p) {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, id := range []string{p.SourceAgentID, p.TargetAgentID} {
			if status, msg := s.agentErrLocked(id); status != 0 {
				c.rpcError(env.ID, rpcInvalidParams, msg)
				return
			}
		}
		now := ts(s.Now())
		meta := p.Metadata
		if meta == nil {
			meta = map[string]any{}
		}
		t := &a2aTask{
			ID: s.st.nextID("task"), SourceAgentID: p.SourceAgentID, TargetAgentID: p.TargetAgentID,
			Status: "pending", Message: p.Message, Artifacts: []any{}, Metadata: meta,
			CreatedAt: now, UpdatedAt: now,
		}
		s.st.tasks[t.ID] = t
		c.rpcResult(env.ID, *t)
	case "tasks/get", "tasks/cancel":
		var p taskIDParams
		if !c.rpcParams(env, &p) {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		t, ok := s.st.tasks[p.TaskID]
		if !ok {
			c.rpcError(env.ID, a2aTaskNotFound, fmt.Sprintf("task %q not found", p.TaskID))
			return
		}
		if env.Method == "tasks/cancel" {
			if t.Status != "pending" {
				c.rpcError(env.ID, a2aNotCancelable, fmt.Sprintf("task %q is %s", t.ID, t.Status))
				return
			}
			t.Status, t.UpdatedAt = "cancelled", ts(s.Now())
		}
		c.rpcResult(env.ID, *t)
	default:
		c.rpcError(env.ID, rpcMethodNotFound, fmt.Sprintf("method %q not found", env.Method))
	}
}

// rpcParams strictly decodes the envelope's params into dst; when they do
// not fit it answers a JSON-RPC invalid-params error naming the key and
// returns false.
func (c *call) rpcParams(env rpcEnvelope, dst any) bool {
	if err := decodeStrictAt("params", env.Params, dst); err != nil {
		c.rpcError(env.ID, rpcInvalidParams, err.Error())
		return false
	}
	return true
}

// msgTask is an A2A v1.0 task created by message/send.
type msgTask struct {
	id        string
	contextID string
	agentID   string
	history   []any
	artifacts []any
}

type messagePart struct {
	Kind string  `json:"kind" wire:"always,nonempty"`
	Text *string `json:"text"`
}

type a2aMessage struct {
	Role      string        `json:"role" wire:"always,nonempty"`
	Parts     []messagePart `json:"parts" wire:"always"`
	MessageID string        `json:"messageId" wire:"always,nonempty"`
	TaskID    string        `json:"taskId" wire:"truthy"`
}

type messageSendParams struct {
	Message a2aMessage `json:"message" wire:"always"`
}

// a2aAgent serves A2A v1.0 message/send for the agent in the path. The
// agent answers at once by echoing the text: the task completes with the
// echo as its reply message and artifact. A taskId continues that task.
func (s *Server) a2aAgent(c *call, env rpcEnvelope) {
	if env.Method != "message/send" {
		c.rpcError(env.ID, rpcMethodNotFound, fmt.Sprintf("method %q not found", env.Method))
		return
	}
	var p messageSendParams
	if !c.rpcParams(env, &p) {
		return
	}
	var texts []string
	for _, part := range p.Message.Parts {
		if part.Kind == "text" && part.Text != nil {
			texts = append(texts, *part.Text)
		}
	}
	agentID := c.param("agent_id")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.activeAgentLocked(c, agentID) == nil {
		return
	}
	var t *msgTask
	if p.Message.TaskID != "" {
		var ok bool
		if t, ok = s.st.msgTasks[p.Message.TaskID]; !ok || t.agentID != agentID {
			c.rpcError(env.ID, a2aTaskNotFound, fmt.Sprintf("task %q not found", p.Message.TaskID))
			return
		}
	} else {
		t = &msgTask{id: s.st.nextID("task"), contextID: s.st.nextID("ctx"), agentID: agentID}
		s.st.msgTasks[t.id] = t
	}
	var raw struct {
		Message map[string]any `json:"message"`
	}
	_ = json.Unmarshal(env.Params, &raw) // validated above
	userMsg := raw.Message
	userMsg["kind"], userMsg["taskId"], userMsg["contextId"] = "message", t.id, t.contextID
	echo := "echo: " + strings.Join(texts, " ")
	echoParts := []any{map[string]any{"kind": "text", "text": echo}}
	reply := map[string]any{
		"kind": "message", "role": "agent", "parts": echoParts,
		"messageId": s.st.nextID("msg"), "taskId": t.id, "contextId": t.contextID,
	}
	t.history = append(append([]any{}, t.history...), userMsg, reply)
	t.artifacts = append(append([]any{}, t.artifacts...), map[string]any{
		"artifactId": s.st.nextID("art"), "parts": echoParts,
	})
	c.rpcResult(env.ID, map[string]any{
		"kind": "task", "id": t.id, "contextId": t.contextID,
		"status":    map[string]any{"state": "completed", "timestamp": formatTime(s.Now())},
		"history":   t.history,
		"artifacts": t.artifacts,
	})
}
