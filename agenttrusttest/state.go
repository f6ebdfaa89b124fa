package agenttrusttest

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// state is the in-memory gateway; every field is guarded by Server.mu.
// Slices and maps stored in entities are never mutated in place (they are
// replaced), so a shallow copy taken under the lock can be encoded after
// the lock is released.
type state struct {
	seq     map[string]int
	apiKeys map[string]string // key -> org
	policy  Policy

	agents      table[agent]
	tokens      map[string]*token
	sessions    table[session]
	approvals   table[approval]
	cards       map[string]*cardState
	tasks       map[string]*a2aTask
	msgTasks    map[string]*msgTask
	mcpServers  table[mcpServer]
	delegations table[delegation]
	providers   table[provider]
	fedTokens   map[string]*fedToken
	siem        table[siemDestination]
	deliveries  []*siemDelivery
	identity    identityState

	requests     []RecordedRequest // oldest first; bounded by Server.logMax and logBytes
	requestBytes int               // sum of len(Body) over requests
	checks       []CheckRecord
	batches      []TelemetryBatchRecord
	faults       map[string]*faultState
}

func newState(p Policy) state {
	return state{
		seq:       map[string]int{},
		apiKeys:   map[string]string{},
		policy:    p.clone(),
		tokens:    map[string]*token{},
		cards:     map[string]*cardState{},
		tasks:     map[string]*a2aTask{},
		msgTasks:  map[string]*msgTask{},
		fedTokens: map[string]*fedToken{},
		faults:    map[string]*faultState{},
	}
}

// nextID returns a deterministic id such as "chk-1".
func (st *state) nextID(prefix string) string {
	st.seq[prefix]++
	return fmt.Sprintf("%s-%d", prefix, st.seq[prefix])
}

// RecordedRequest is a request as it arrived at the fake, before any
// validation: method, the path exactly as sent (still percent-escaped),
// the raw query, all headers and the raw body bytes. Body is empty for a
// request refused before its body was read (unknown route, missing or
// invalid API key) and for one over the 8 MiB body limit.
type RecordedRequest struct {
	Method   string
	Path     string
	RawQuery string
	Header   http.Header
	Body     []byte
	Time     time.Time
	// Listener is "gateway", "auth" or "audit" with split listeners, and
	// "gateway" otherwise.
	Listener string
	// RequestID is the X-Request-ID the fake answered with.
	RequestID string
}

func (s *Server) record(r *http.Request, body []byte, served api, reqID string) {
	path := r.URL.EscapedPath()
	if strings.HasPrefix(r.RequestURI, "/") {
		path, _, _ = strings.Cut(r.RequestURI, "?")
	}
	listener := "gateway"
	switch served {
	case apiAuth:
		listener = "auth"
	case apiAudit:
		listener = "audit"
	}
	rec := RecordedRequest{
		Method:    r.Method,
		Path:      path,
		RawQuery:  r.URL.RawQuery,
		Header:    r.Header.Clone(),
		Body:      append([]byte(nil), body...),
		Time:      s.Now(),
		Listener:  listener,
		RequestID: reqID,
	}
	s.mu.Lock()
	s.st.requests = append(s.st.requests, rec)
	s.st.requestBytes += len(rec.Body)
	for len(s.st.requests) > s.logMax || (s.st.requestBytes > s.logBytes && len(s.st.requests) > 1) {
		s.st.requestBytes -= len(s.st.requests[0].Body)
		s.st.requests[0] = RecordedRequest{} // let the dropped body go
		s.st.requests = s.st.requests[1:]
	}
	s.mu.Unlock()
}

// Requests returns copies of the requests received so far, in arrival
// order, including rejected ones. The log is bounded (WithRequestLogLimit):
// it keeps the most recent DefaultRequestLogSize requests and at most
// DefaultRequestLogBytes of bodies, dropping the oldest first.
func (s *Server) Requests() []RecordedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RecordedRequest, len(s.st.requests))
	for i, r := range s.st.requests {
		r.Header = r.Header.Clone()
		r.Body = append([]byte(nil), r.Body...)
		out[i] = r
	}
	return out
}

// ClearRequests forgets the recorded requests.
func (s *Server) ClearRequests() {
	s.mu.Lock()
	s.st.requests, s.st.requestBytes = nil, 0
	s.mu.Unlock()
}

// CheckRecord is an action check the server accepted: the body of a
// POST /api/v1/agenttrust/check, key by key.
type CheckRecord struct {
	AgentID            string // agent_id
	SessionID          string // session_id
	ActionName         string // action_name, the tool
	ActionSource       string // action_source, always "api"
	ActionInputSummary string // action_input_summary
	ActionEffect       string // action_effect; "" when not sent
}

// TelemetryBatchRecord is a telemetry report the server accepted: the body
// of a POST /api/v1/telemetry/report.
type TelemetryBatchRecord struct {
	AgentID   string                 // agent_id
	SessionID string                 // session_id
	Events    []TelemetryEventRecord // events, in order
}

// TelemetryEventRecord is one event of an accepted telemetry report. The
// pointers are nil when the key was not sent.
type TelemetryEventRecord struct {
	EventType  string // event_type, e.g. "tool_start"
	ToolName   string // tool_name
	DurationMs *int64 // duration_ms
	Success    *bool  // success
	Timestamp  string // timestamp, as sent
	ErrorType  string // error_type; "" when not sent
}

// Checks returns the accepted action checks, in order.
func (s *Server) Checks() []CheckRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]CheckRecord{}, s.st.checks...)
}

// TelemetryBatches returns the accepted telemetry reports, in order.
func (s *Server) TelemetryBatches() []TelemetryBatchRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]TelemetryBatchRecord, len(s.st.batches))
	for i, b := range s.st.batches {
		b.Events = copyEvents(b.Events)
		out[i] = b
	}
	return out
}

// TelemetryEvents returns the events of every accepted telemetry report,
// flattened, in order.
func (s *Server) TelemetryEvents() []TelemetryEventRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []TelemetryEventRecord{}
	for _, b := range s.st.batches {
		out = append(out, copyEvents(b.Events)...)
	}
	return out
}

// copyEvents copies events deeply, so that a caller cannot reach the
// server's state through the pointers.
func copyEvents(events []TelemetryEventRecord) []TelemetryEventRecord {
	out := make([]TelemetryEventRecord, len(events))
	for i, e := range events {
		if e.DurationMs != nil {
			d := *e.DurationMs
			e.DurationMs = &d
		}
		if e.Success != nil {
			ok := *e.Success
			e.Success = &ok
		}
		out[i] = e
	}
	return out
}
