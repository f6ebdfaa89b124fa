package agenttrust

import (
	"encoding/json"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTelemetryTimestampFormat(t *testing.T) {
	est := time.FixedZone("EST", -5*3600)
	cases := []struct {
		in   time.Time
		want string
	}{
		{time.Date(2026, 3, 1, 10, 0, 0, 123456000, time.UTC), "2026-03-01T10:00:00.123456+00:00"},
		{time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), "2026-03-01T10:00:00.000000+00:00"},
		{time.Date(2026, 3, 1, 10, 0, 0, 999, time.UTC), "2026-03-01T10:00:00.000000+00:00"},
		{time.Date(2026, 3, 1, 10, 0, 0, 1999, time.UTC), "2026-03-01T10:00:00.000001+00:00"},
		{time.Date(2026, 3, 1, 5, 0, 0, 500000000, est), "2026-03-01T10:00:00.500000+00:00"},
	}
	for _, tc := range cases {
		b, err := json.Marshal(TelemetryEvent{EventType: EventToolEnd, ToolName: "t", Timestamp: tc.in})
		require.NoError(t, err)
		got := decodeMap(t, b)["timestamp"]
		assert.Equal(t, tc.want, got, "%v: timestamp %v, want %s", tc.in, got, tc.want)
	}
	// The zero time is filled with now.
	before := time.Now().UTC().Truncate(time.Microsecond)
	b, _ := json.Marshal(TelemetryEvent{EventType: EventToolStart, ToolName: "t"})
	after := time.Now().UTC()
	s := decodeMap(t, b)["timestamp"].(string)
	require.True(t, regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$`).MatchString(s), "filled timestamp %q", s)
	got := parseTimestamp(s)
	assert.False(t, got.Before(before), "filled timestamp %v not within [%v, %v]", got, before, after)
	assert.False(t, got.After(after), "filled timestamp %v not within [%v, %v]", got, before, after)
}

func TestTelemetryEventWire(t *testing.T) {
	srv := newRecServer(t, reply(200, `{"accepted":true,"events_processed":3}`))
	c := newTestClient(t, srv.URL)
	f, tr, zero, dur := false, true, 0, 40
	ts := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	res, err := c.Telemetry.Report(ctxT(t), TelemetryReportParams{AgentID: "a1", SessionID: "s1", Events: []TelemetryEvent{
		{EventType: EventToolStart, ToolName: "search", Timestamp: ts},
		{EventType: EventToolEnd, ToolName: "search", DurationMs: &zero, Success: &tr, Timestamp: ts},
		{EventType: EventToolError, ToolName: "search", DurationMs: &dur, Success: &f, Timestamp: ts, ErrorType: "ValueError"},
	}})
	require.NoError(t, err, "%v", res)
	require.Equal(t, true, res["accepted"], "%v %v", res, err)
	require.Equal(t, float64(3), res["events_processed"], "%v %v", res, err)
	body := srv.only(t).Body
	got := keyOrder(t, body)
	assert.Equal(t, []string{"agent_id", "session_id", "events"}, got, "top-level key order %v", got)
	var raw struct{ Events []json.RawMessage }
	json.Unmarshal(body, &raw)
	wantKeys := [][]string{
		{"event_type", "tool_name", "timestamp"},
		{"event_type", "tool_name", "duration_ms", "success", "timestamp"},
		{"event_type", "tool_name", "duration_ms", "success", "timestamp", "error_type"},
	}
	for i, ev := range raw.Events {
		got := keyOrder(t, ev)
		assert.Equal(t, wantKeys[i], got, "event %d keys %v, want %v", i, got, wantKeys[i])
	}
	ev := decodeMap(t, raw.Events[2])
	assert.Equal(t, false, ev["success"], "tool_error event %v", ev)
	assert.Equal(t, json.Number("40"), ev["duration_ms"], "tool_error event %v", ev)
	assert.Equal(t, "ValueError", ev["error_type"], "tool_error event %v", ev)
	ev = decodeMap(t, raw.Events[1])
	assert.Equal(t, json.Number("0"), ev["duration_ms"], "zero duration and success true must be sent: %v", ev)
	assert.Equal(t, true, ev["success"], "zero duration and success true must be sent: %v", ev)
	srv.setHandler(reply(200, `[]`))
	_, err = c.Telemetry.Report(ctxT(t), TelemetryReportParams{AgentID: "a1"})
	wantDecode(t, err)
}
