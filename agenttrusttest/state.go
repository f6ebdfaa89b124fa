package agenttrusttest

import (
	"encoding/json"
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
	checks       [][]byte
	batches      [][]byte
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

// Checks returns the decoded bodies of the accepted action checks, in order.
func (s *Server) Checks() []map[string]any {
	s.mu.Lock()
	raw := append([][]byte(nil), s.st.checks...)
	s.mu.Unlock()
	return decodeAll(raw)
}

// TelemetryBatches returns the decoded bodies of the accepted telemetry
// reports, in order.
func (s *Server) TelemetryBatches() []map[string]any {
	s.mu.Lock()
	raw := append([][]byte(nil), s.st.batches...)
	s.mu.Unlock()
	return decodeAll(raw)
}

// TelemetryEvents returns the events of every accepted telemetry report,
// flattened, in order.
func (s *Server) TelemetryEvents() []map[string]any {
	var out []map[string]any
	for _, b := range s.TelemetryBatches() {
		events, _ := b["events"].([]any)
		for _, e := range events {
			if m, ok := e.(map[string]any); ok {
				out = append(out, m)
			}
		}
	}
	return out
}

func decodeAll(raw [][]byte) []map[string]any {
	out := make([]map[string]any, 0, len(raw))
	for _, b := range raw {
		var m map[string]any
		if json.Unmarshal(b, &m) == nil {
			out = append(out, m)
		}
	}
	return out
}
