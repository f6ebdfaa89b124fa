package agenttrust

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/google/uuid"
)

// A2AService talks the agent-to-agent protocol through the gateway, as
// JSON-RPC 2.0. A JSON-RPC "error" member in a reply is
// returned as a *JSONRPCError.
type A2AService service

// A2ASendTaskParams are the arguments of A2A.SendTask.
type A2ASendTaskParams struct {
	SourceAgentID string
	TargetAgentID string
	Message       string
	// Metadata is passed through; it is sent only when non-empty.
	Metadata map[string]any
}

type a2aSendTaskWire struct {
	SourceAgentID string         `json:"source_agent_id"`
	TargetAgentID string         `json:"target_agent_id"`
	Message       string         `json:"message"`
	Metadata      map[string]any `json:"metadata,omitempty"`
}

type a2aTaskIDWire struct {
	TaskID string `json:"task_id"`
}

// SendTask sends an AgentTrust task from one agent to another: method
// "tasks/send" on POST /a2a.
func (s *A2AService) SendTask(ctx context.Context, p A2ASendTaskParams, opts ...RequestOption) (*A2ATask, error) {
	return s.task(ctx, "tasks/send", opts, &a2aSendTaskWire{
		SourceAgentID: p.SourceAgentID,
		TargetAgentID: p.TargetAgentID,
		Message:       p.Message,
		Metadata:      p.Metadata,
	})
}

// GetTask reads a task: method "tasks/get" on POST /a2a, with params
// {"task_id": taskID}.
func (s *A2AService) GetTask(ctx context.Context, taskID string, opts ...RequestOption) (*A2ATask, error) {
	return s.task(ctx, "tasks/get", opts, &a2aTaskIDWire{TaskID: taskID})
}

// CancelTask cancels a task: method "tasks/cancel" on POST /a2a.
func (s *A2AService) CancelTask(ctx context.Context, taskID string, opts ...RequestOption) (*A2ATask, error) {
	return s.task(ctx, "tasks/cancel", opts, &a2aTaskIDWire{TaskID: taskID})
}

func (s *A2AService) task(ctx context.Context, method string, opts []RequestOption, params any) (*A2ATask, error) {
	return rpcCall[A2ATask](ctx, s.client, &request{method: http.MethodPost, path: "/a2a", body: newRPCRequest(method, params)}, opts)
}

// A2ASendMessageParams are the arguments of A2A.SendMessage.
type A2ASendMessageParams struct {
	// Text is sent as the message's single text part.
	Text string
	// MessageID identifies the message; "" sends a fresh random UUIDv4.
	MessageID string
	// TaskID continues an existing task when non-empty.
	TaskID string
}

type a2aMessageWire struct {
	Role      string            `json:"role"`
	Parts     []a2aTextPartWire `json:"parts"`
	MessageID string            `json:"messageId"`
	TaskID    string            `json:"taskId,omitempty"`
}

type a2aTextPartWire struct {
	Kind string `json:"kind"`
	Text string `json:"text"`
}

// SendMessage sends a user message to an agent in the A2A v1.0 form: method
// "message/send" on POST /a2a/agents/{agent_id}. The agent may answer with a
// Task or with a Message; a Message reply gives a task with an empty ID and
// State, and the reply itself in Raw.
func (s *A2AService) SendMessage(ctx context.Context, agentID string, p A2ASendMessageParams, opts ...RequestOption) (*A2AMessageTask, error) {
	path, err := buildPath("/a2a/agents/{agent_id}", agentID)
	if err != nil {
		return nil, err
	}
	msgID := p.MessageID
	if msgID == "" {
		msgID = uuid.NewString()
	}
	params := struct {
		Message a2aMessageWire `json:"message"`
	}{a2aMessageWire{
		Role:      "user",
		Parts:     []a2aTextPartWire{{Kind: "text", Text: p.Text}},
		MessageID: msgID,
		TaskID:    p.TaskID,
	}}
	return rpcCall[A2AMessageTask](ctx, s.client, &request{method: http.MethodPost, path: path, body: newRPCRequest("message/send", params)}, opts)
}

// A2ATask is a legacy AgentTrust task, the result of tasks/send, tasks/get
// and tasks/cancel.
type A2ATask struct {
	ID            string `json:"id"`
	SourceAgentID string `json:"source_agent_id"`
	TargetAgentID string `json:"target_agent_id"`
	// Status is e.g. "pending", "completed" or "cancelled"; "pending" when
	// absent.
	Status    string            `json:"status"`
	Message   string            `json:"message"`
	Artifacts []json.RawMessage `json:"artifacts"`
	Metadata  map[string]any    `json:"metadata"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
}

// UnmarshalJSON applies the "pending" default (for an absent or null
// status) and lenient timestamps.
func (t *A2ATask) UnmarshalJSON(b []byte) error {
	*t = A2ATask{Status: "pending"}
	return unmarshalModel(b, t)
}

// A2AMessageTask is an A2A v1.0 Task, the result of message/send.
type A2AMessageTask struct {
	ID        string `json:"id"`
	ContextID string `json:"contextId"`
	// Status is the raw status object; empty when absent or not an object.
	Status map[string]any `json:"-"`
	// State is status.state, e.g. "working" or "completed".
	State string `json:"-"`
	// StatusTimestamp is status.timestamp, kept as sent and not parsed.
	StatusTimestamp string            `json:"-"`
	History         []json.RawMessage `json:"history"`
	Artifacts       []json.RawMessage `json:"artifacts"`
	// Raw is the whole result, e.g. an A2A Message when the agent answered
	// with one instead of a Task.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON reads the status leniently: a status that is not an object
// counts as empty, and non-string state or timestamp values as "".
func (t *A2AMessageTask) UnmarshalJSON(b []byte) error {
	type plain A2AMessageTask
	w := struct {
		*plain
		Status json.RawMessage `json:"status"`
	}{plain: (*plain)(t)}
	*t = A2AMessageTask{}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	t.Raw = append(json.RawMessage(nil), bytes.TrimSpace(b)...)
	t.Status = map[string]any{}
	if st := bytes.TrimSpace(w.Status); len(st) > 0 && st[0] == '{' {
		var m map[string]any
		if json.Unmarshal(st, &m) == nil && m != nil {
			t.Status = m
		}
	}
	t.State, _ = t.Status["state"].(string)
	t.StatusTimestamp, _ = t.Status["timestamp"].(string)
	return nil
}
