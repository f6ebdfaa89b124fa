package agenttrust

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/agenttrustid/agenttrust-go/internal/runes"
)

// ActionsService asks the Guardian whether an agent may act. Checks go to the
// auth service, not the gateway.
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
// so they are retried on transport failures and 429/502/503/504;
// WithRequestRetryUntilDeadline lets a check ride out a gateway restart.
//
// The decision is "allowed" alone: a reply whose "allowed" is present but
// not a JSON boolean is a DECODE_ERROR. Every other field is decoded
// leniently: a value of the wrong type leaves that field at its zero value,
// is logged at warning level on the client's logger (WithLogger), and never
// changes the decision.
func (s *ActionsService) Check(ctx context.Context, p ActionCheckParams, opts ...RequestOption) (*ActionCheckResult, error) {
	name := p.ToolName
	if name == "" {
		name = orDefault(p.Action, "tool_call")
	}
	body := actionCheckBody{
		AgentID:      p.AgentID,
		SessionID:    p.SessionID,
		ActionName:   name,
		ActionSource: "api",
		InputSummary: runes.Truncate(p.ToolInputSummary, MaxSummaryRunes),
		ActionEffect: p.ActionEffect,
	}
	raw := body.appendJSON(nil)
	newReq := func() *request {
		return &request{method: http.MethodPost, base: baseAuth, path: "/api/v1/agenttrust/check",
			rawBody: raw, idempotent: true}
	}
	ac := s.client.creds.Load()
	if ac == nil {
		return s.check(ctx, newReq(), opts)
	}
	// With agent credentials every attempt carries the WIMSE token and a
	// fresh DPoP proof. A 401 means the token was refused (revoked early,
	// say): drop it and retry once with a new token and proof.
	cc := &credentialedCall{ac: ac}
	r := newReq()
	r.attempt = cc
	res, err := s.check(ctx, r, opts)
	var ae *AuthenticationError
	if err == nil || cc.used == nil || !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		return res, err
	}
	ac.drop(cc.used)
	r = newReq()
	r.attempt = cc
	return s.check(ctx, r, opts)
}

// check sends one check request and decodes its reply: "allowed" strictly,
// every other field leniently, with a warning for each mistyped one.
func (s *ActionsService) check(ctx context.Context, r *request, opts []RequestOption) (*ActionCheckResult, error) {
	resp, err := s.client.do(ctx, r, opts)
	if err != nil {
		return nil, err
	}
	res, mistyped, err := decodeCheckResult(resp.body)
	if err != nil {
		return nil, decodeErr(resp, err)
	}
	for _, f := range mistyped {
		s.client.logger.LogAttrs(ctx, slog.LevelWarn, "agenttrust: check reply field has the wrong type; ignored",
			slog.String("field", f), slog.String("request_id", resp.requestID))
	}
	return res, nil
}

// appendJSON appends b as JSON, byte for byte as encodeJSON writes it
// (fields in order, action_effect omitted when empty, no HTML escaping), in
// one allocation and without reflection: a check is sent before every tool
// call.
func (b *actionCheckBody) appendJSON(dst []byte) []byte {
	if dst == nil {
		dst = make([]byte, 0, 144+len(b.AgentID)+len(b.SessionID)+len(b.ActionName)+len(b.ActionSource)+
			len(b.InputSummary)+len(b.ActionEffect))
	}
	dst = append(dst, `{"agent_id":`...)
	dst = appendJSONString(dst, b.AgentID)
	dst = append(dst, `,"session_id":`...)
	dst = appendJSONString(dst, b.SessionID)
	dst = append(dst, `,"action_name":`...)
	dst = appendJSONString(dst, b.ActionName)
	dst = append(dst, `,"action_source":`...)
	dst = appendJSONString(dst, b.ActionSource)
	dst = append(dst, `,"action_input_summary":`...)
	dst = appendJSONString(dst, b.InputSummary)
	if b.ActionEffect != "" {
		dst = append(dst, `,"action_effect":`...)
		dst = appendJSONString(dst, string(b.ActionEffect))
	}
	return append(dst, '}')
}

// jsonBool is a JSON boolean decoded strictly, without allocating: it tells
// an absent (or null) value from false and from a value of another type.
type jsonBool uint8

const (
	boolAbsent jsonBool = iota // absent or null
	boolFalse
	boolTrue
	boolInvalid // present but not a JSON boolean
)

func (b *jsonBool) UnmarshalJSON(data []byte) error {
	switch string(data) {
	case "true":
		*b = boolTrue
	case "false":
		*b = boolFalse
	case "null":
		*b = boolAbsent
	default:
		*b = boolInvalid
	}
	return nil
}

// plainCheckResult is ActionCheckResult without its UnmarshalJSON.
type plainCheckResult ActionCheckResult

// checkReplyWire decodes a check reply into res in one pass and one allocation:
// the embedded pointer aims at res, and Allowed, at depth 0, takes the
// "allowed" key from the embedded bool.
type checkReplyWire struct {
	*plainCheckResult
	Allowed jsonBool `json:"allowed"`
	res     ActionCheckResult
}

// checkReplyRaw is the fallback when a field has the wrong type: each
// field is kept raw and decoded on its own.
type checkReplyRaw struct {
	Allowed           jsonBool        `json:"allowed"`
	CheckID           json.RawMessage `json:"check_id"`
	Confidence        json.RawMessage `json:"confidence"`
	GuardTier         json.RawMessage `json:"guard_tier"`
	LatencyMs         json.RawMessage `json:"latency_ms"`
	Reason            json.RawMessage `json:"reason"`
	ElevationRequired json.RawMessage `json:"elevation_required"`
	ApprovalID        json.RawMessage `json:"approval_id"`
}

// errAllowedNotBool is the one check-reply defect that fails the decode.
var errAllowedNotBool = errors.New(`check reply: "allowed" is not a JSON boolean`)

// decodeCheckResult decodes a check reply: "allowed" strictly, every other
// field leniently (a wrong type gives the zero value and the field's name in
// mistyped). An empty or null body reads as {}: a denial with no decision
// (Decided false). A body that is not a JSON object is an error.
func decodeCheckResult(b []byte) (res *ActionCheckResult, mistyped []string, err error) {
	return decodeCheck(b, true)
}

// decodeCheck is decodeCheckResult; fast enables the reflection-free
// decoder for the common shape of a reply (tests compare both ways).
func decodeCheck(b []byte, fast bool) (res *ActionCheckResult, mistyped []string, err error) {
	w := &checkReplyWire{}
	w.plainCheckResult = (*plainCheckResult)(&w.res)
	switch {
	case isEmptyJSON(b):
	case fast && w.decodeFast(b):
	default:
		w.res, w.Allowed = ActionCheckResult{}, boolAbsent
		err = json.Unmarshal(b, w)
	}
	if err != nil && isTypeError(err) {
		w.res, w.Allowed = ActionCheckResult{}, boolAbsent
		if mistyped, err = w.decodeLenient(b); err != nil {
			return nil, nil, err
		}
	}
	if err != nil {
		return nil, nil, err
	}
	if w.Allowed == boolInvalid {
		return nil, nil, errAllowedNotBool
	}
	w.res.Allowed, w.res.decided = w.Allowed == boolTrue, w.Allowed != boolAbsent
	return &w.res, mistyped, nil
}

// isTypeError reports whether err is a JSON value of the wrong Go type. It
// keeps the *json.UnmarshalTypeError target off the success path's heap.
func isTypeError(err error) bool {
	var typeErr *json.UnmarshalTypeError
	return errors.As(err, &typeErr)
}

// decodeLenient decodes b field by field into w; see decodeCheckResult.
func (w *checkReplyWire) decodeLenient(b []byte) ([]string, error) {
	var raw checkReplyRaw
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err // not an object
	}
	w.Allowed = raw.Allowed
	var mistyped []string
	field := func(name string, v json.RawMessage, dst any, reset func()) {
		if len(v) == 0 || isEmptyJSON(v) {
			return
		}
		if json.Unmarshal(v, dst) != nil {
			reset()
			mistyped = append(mistyped, name)
		}
	}
	r := &w.res
	field("check_id", raw.CheckID, &r.CheckID, func() { r.CheckID = "" })
	field("confidence", raw.Confidence, &r.Confidence, func() { r.Confidence = nil })
	field("guard_tier", raw.GuardTier, &r.GuardTier, func() { r.GuardTier = "" })
	field("latency_ms", raw.LatencyMs, &r.LatencyMs, func() { r.LatencyMs = nil })
	field("reason", raw.Reason, &r.Reason, func() { r.Reason = "" })
	field("elevation_required", raw.ElevationRequired, &r.ElevationRequired, func() { r.ElevationRequired = false })
	field("approval_id", raw.ApprovalID, &r.ApprovalID, func() { r.ApprovalID = "" })
	return mistyped, nil
}
