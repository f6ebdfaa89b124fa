package agenttrust

import (
	"context"
	"net/http"
	"time"
)

// TelemetryService reports tool events to the audit service. Most agents use
// the guard package, which buffers and batches events in the background.
type TelemetryService service

// TelemetryEvent is one event on the wire.
type TelemetryEvent struct {
	// EventType is EventToolStart, EventToolEnd or EventToolError.
	EventType EventType
	// ToolName is the tool the event is about.
	ToolName string
	// DurationMs is sent when non-nil.
	DurationMs *int
	// Success is sent when non-nil; false reaches the wire.
	Success *bool
	// Timestamp is sent as RFC 3339 UTC with six fraction digits and
	// "+00:00"; the zero time is replaced by the current time.
	Timestamp time.Time
	// ErrorType is the error's type name, never its message; sent when
	// non-empty.
	ErrorType string
}

// telemetryTimeLayout is how telemetry timestamps are written.
const telemetryTimeLayout = "2006-01-02T15:04:05.000000+00:00"

type telemetryEventWire struct {
	EventType  EventType `json:"event_type"`
	ToolName   string    `json:"tool_name"`
	DurationMs *int      `json:"duration_ms,omitempty"`
	Success    *bool     `json:"success,omitempty"`
	Timestamp  string    `json:"timestamp"`
	ErrorType  string    `json:"error_type,omitempty"`
}

// MarshalJSON writes the event with its keys in the wire order.
func (e TelemetryEvent) MarshalJSON() ([]byte, error) {
	ts := e.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	// json.Marshal would HTML-escape <, > and & (as \u003c ...), and the
	// request encoder cannot undo that: they must stay literal.
	return encodeJSON(telemetryEventWire{
		EventType:  e.EventType,
		ToolName:   e.ToolName,
		DurationMs: e.DurationMs,
		Success:    e.Success,
		Timestamp:  ts.UTC().Format(telemetryTimeLayout),
		ErrorType:  e.ErrorType,
	})
}

// TelemetryReportParams are the arguments of Telemetry.Report.
type TelemetryReportParams struct {
	AgentID   string
	SessionID string
	// Events are sent in order; nil sends [].
	Events []TelemetryEvent
}

// Report sends one batch: POST /api/v1/telemetry/report on the audit
// service. It returns the gateway's answer, uninterpreted. Reports are not
// retried after the request was written (a retry could duplicate events);
// the guard's reporter retries whole batches instead.
func (s *TelemetryService) Report(ctx context.Context, p TelemetryReportParams, opts ...RequestOption) (map[string]any, error) {
	body := struct {
		AgentID   string           `json:"agent_id"`
		SessionID string           `json:"session_id"`
		Events    []TelemetryEvent `json:"events"`
	}{p.AgentID, p.SessionID, nonNil(p.Events)}
	return callRaw(ctx, s.client, &request{method: http.MethodPost, base: baseAudit, path: "/api/v1/telemetry/report", body: body}, opts)
}
