package guard

import (
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/internal/runes"
)

// EventType is the kind of a telemetry event, the core SDK's type. Only the
// three types the gateway knows are sent; Report drops an event of any other
// type.
type EventType = agenttrust.EventType

// The telemetry event types, the core SDK's constants.
const (
	EventToolStart = agenttrust.EventToolStart
	EventToolEnd   = agenttrust.EventToolEnd
	EventToolError = agenttrust.EventToolError
)

// Event is one telemetry event. Build it with ToolStart, ToolEnd or
// ToolError; success is derived from Type, so the two cannot disagree.
type Event struct {
	// Type is EventToolStart, EventToolEnd or EventToolError.
	Type EventType
	// Tool is the tool's name; an event without one is dropped.
	Tool string
	// Duration is how long the tool ran (tool_end and tool_error only);
	// sent as whole milliseconds, at least 0.
	Duration time.Duration
	// ErrorType is the error's Go type (tool_error only), never its text.
	ErrorType string
	// Time is when it happened; Report stamps the current time when zero.
	Time time.Time
}

// ToolStart returns a tool_start event for tool.
func ToolStart(tool string) Event { return Event{Type: EventToolStart, Tool: tool} }

// ToolEnd returns a tool_end (success) event for a tool that ran for d.
func ToolEnd(tool string, d time.Duration) Event {
	return Event{Type: EventToolEnd, Tool: tool, Duration: d}
}

// ToolError returns a tool_error event for a tool that ran for d and failed
// with err. Only the error's type name is kept (ErrorTypeOf), never its text.
func ToolError(tool string, d time.Duration, err error) Event {
	return Event{Type: EventToolError, Tool: tool, Duration: d, ErrorType: ErrorTypeOf(err)}
}

// ErrorTypeOf returns err's Go type as %T prints it, e.g. "*fs.PathError";
// "" for a nil error. It never looks at the error's message.
func ErrorTypeOf(err error) string {
	if err == nil {
		return ""
	}
	return fmt.Sprintf("%T", err)
}

// LengthSummary returns "[N chars]", N being the number of runes (code
// points) in input: the privacy-preserving summary integrations send by
// default instead of the input itself.
func LengthSummary(input string) string {
	return "[" + strconv.Itoa(utf8.RuneCountInString(input)) + " chars]"
}

// TruncateRunes returns s cut to at most n runes, on a rune boundary.
// Invalid UTF-8 bytes count as one rune each and are kept as they are.
func TruncateRunes(s string, n int) string { return runes.Truncate(s, n) }

// valid reports whether the event can be sent.
func (e Event) valid() bool {
	switch e.Type {
	case EventToolStart, EventToolEnd, EventToolError:
		return e.Tool != ""
	}
	return false
}

// wire converts the event to its wire form.
func (e Event) wire() agenttrust.TelemetryEvent {
	w := agenttrust.TelemetryEvent{EventType: e.Type, ToolName: e.Tool, Timestamp: e.Time}
	if e.Type == EventToolStart {
		return w
	}
	ms := int(e.Duration.Milliseconds())
	if ms < 0 {
		ms = 0
	}
	ok := e.Type == EventToolEnd
	w.DurationMs, w.Success = &ms, &ok
	if !ok {
		w.ErrorType = e.ErrorType
	}
	return w
}
