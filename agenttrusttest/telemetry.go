package agenttrusttest

import (
	"fmt"
	"net/http"
	"time"
)

type telemetryEvent struct {
	EventType  string `json:"event_type" wire:"always,nonempty"`
	ToolName   string `json:"tool_name" wire:"always"`
	DurationMs *int64 `json:"duration_ms"`
	Success    *bool  `json:"success"`
	Timestamp  string `json:"timestamp" wire:"always"`
	ErrorType  string `json:"error_type" wire:"truthy"`
}

type reportRequest struct {
	AgentID   string           `json:"agent_id" wire:"always"`
	SessionID string           `json:"session_id" wire:"always"`
	Events    []telemetryEvent `json:"events" wire:"always"`
}

func (r reportRequest) validate() string {
	for i, e := range r.Events {
		if _, err := time.Parse(time.RFC3339Nano, e.Timestamp); err != nil {
			return fmt.Sprintf("key %q must be an RFC 3339 timestamp", fmt.Sprintf("events[%d].timestamp", i))
		}
	}
	return ""
}

// report accepts a telemetry batch. Events are held to the event shape of
// wire contract (known keys only, timestamps in RFC 3339).
func (s *Server) report(c *call, req reportRequest) {
	batch := TelemetryBatchRecord{AgentID: req.AgentID, SessionID: req.SessionID,
		Events: make([]TelemetryEventRecord, len(req.Events))}
	for i, e := range req.Events {
		batch.Events[i] = TelemetryEventRecord(e)
	}
	s.mu.Lock()
	s.st.batches = append(s.st.batches, batch)
	s.mu.Unlock()
	c.reply(http.StatusOK, map[string]any{"accepted": true, "events_processed": len(req.Events)})
}
