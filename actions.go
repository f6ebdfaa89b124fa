package agenttrust

import (
	"context"
	"errors"
	"net/http"
)

// ActionsService asks the Guardian whether an agent may act. Checks go to the
// auth service, not the gateway (WIRE.md §5.3).
type ActionsService service

// ActionCheckParams are the arguments of Actions.Check.
type ActionCheckParams struct {
	// AgentID is the acting agent.
	AgentID string
	// Action is the action name when ToolName is empty; "" means "tool_call".
	Action string
	// ToolName, when set, is sent as the action name.
	ToolName string
	// ToolInputSummary describes the input; it is cut to 200 runes.
	ToolInputSummary string
	// SessionID correlates checks and telemetry; always sent, even when empty.
	SessionID string
	// ActionEffect is sent when non-empty; otherwise the backend classifies
	// the action by name.
	ActionEffect ActionEffect
}

// MaxSummaryRunes is how many runes of an input summary are sent.
const MaxSummaryRunes = 200

type actionCheckBody struct {
	AgentID      string       `json:"agent_id"`
	SessionID    string       `json:"session_id"`
	ActionName   string       `json:"action_name"`
	ActionSource string       `json:"action_source"`
	InputSummary string       `json:"action_input_summary"`
	ActionEffect ActionEffect `json:"action_effect,omitempty"`
}

// Check asks whether the action is allowed: POST /api/v1/agenttrust/check.
// A denial is a result with Allowed false and a nil error; elevation is
// signalled by ElevationRequired and ApprovalID. Checks are safe to repeat,
// so they are retried on transport failures and 429/502/503/504.
func (s *ActionsService) Check(ctx context.Context, p ActionCheckParams) (*ActionCheckResult, error) {
	name := p.ToolName
	if name == "" {
		name = orDefault(p.Action, "tool_call")
	}
	body := &actionCheckBody{
		AgentID:      p.AgentID,
		SessionID:    p.SessionID,
		ActionName:   name,
		ActionSource: "api",
		InputSummary: TruncateRunes(p.ToolInputSummary, MaxSummaryRunes),
		ActionEffect: p.ActionEffect,
	}
	newReq := func() *request {
		return &request{method: http.MethodPost, base: baseAuth, path: "/api/v1/agenttrust/check", body: body, idempotent: true}
	}
	ac := s.client.creds.Load()
	if ac == nil {
		return call[ActionCheckResult](ctx, s.client, newReq(), "")
	}
	// With agent credentials every attempt carries the WIMSE token and a
	// fresh DPoP proof. A 401 means the token was refused (revoked early,
	// say): drop it and retry once with a new token and proof.
	cc := &credentialedCall{ac: ac}
	r := newReq()
	r.attempt = cc.attempt
	res, err := call[ActionCheckResult](ctx, s.client, r, "")
	var ae *AuthenticationError
	if err == nil || cc.used == nil || !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		return res, err
	}
	ac.drop(cc.used)
	r = newReq()
	r.attempt = cc.attempt
	return call[ActionCheckResult](ctx, s.client, r, "")
}

// TruncateRunes returns s cut to at most n runes, on a rune boundary. Invalid
// UTF-8 bytes count as one rune each and are kept as they are.
func TruncateRunes(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s // at most n bytes is at most n runes
	}
	count := 0
	for i := range s {
		if count == n {
			return s[:i]
		}
		count++
	}
	return s
}
