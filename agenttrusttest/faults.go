package agenttrusttest

import (
	"net/http"
	"time"
)

// Fault describes a failure injected into one endpoint. The kinds combine:
// Latency is waited first, then the connection is dropped, or a malformed
// body or the Status is answered. A Fault with only Latency (and perhaps
// RetryAfter) delays the normal answer.
type Fault struct {
	Status     int           // 0: no status override
	Body       string        // body for the status ("" -> {"error": "injected fault"})
	RetryAfter string        // Retry-After header value
	Latency    time.Duration // added before answering (honours client disconnect / Close)
	Drop       bool          // hijack and close the connection without answering
	Malformed  bool          // answer 200 with a non-JSON body
	Times      int           // how many requests it affects; 0 = every request until cleared
}

// malformedBody is what a Malformed fault answers: truncated JSON.
const malformedBody = `{"allowed": tru`

type faultState struct {
	f    Fault
	left int // remaining uses; <= 0 means unlimited
}

// InjectFault installs f for endpoint, replacing any fault already there.
// endpoint is "METHOD /route/pattern" with the {param} names of the API paths, e.g.
// "POST /api/v1/agenttrust/check" or "GET /api/v1/agents/{agent_id}". Faults
// apply after routing and before authentication. InjectFault panics on an
// endpoint the fake does not serve, so that a typo cannot make a test pass
// vacuously.
func (s *Server) InjectFault(endpoint string, f Fault) {
	if !s.router.has(endpoint) {
		panic("agenttrusttest: InjectFault: unknown endpoint " + endpoint)
	}
	s.mu.Lock()
	s.st.faults[endpoint] = &faultState{f: f, left: f.Times}
	s.mu.Unlock()
}

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	s.st.faults = map[string]*faultState{}
	s.mu.Unlock()
}

func (s *Server) takeFault(endpoint string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fs, ok := s.st.faults[endpoint]
	if !ok {
		return Fault{}, false
	}
	if fs.left > 0 {
		fs.left--
		if fs.left == 0 {
			delete(s.st.faults, endpoint)
		}
	}
	return fs.f, true
}

// applyFault runs the fault for endpoint, if any, and reports whether the
// request has been fully answered (or abandoned).
func (s *Server) applyFault(c *call, endpoint string) bool {
	f, ok := s.takeFault(endpoint)
	if !ok {
		return false
	}
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		select {
		case <-t.C:
		case <-c.ctx.Done():
			// The client left or the server is closing: answer nothing.
			t.Stop()
			panic(http.ErrAbortHandler)
		}
	}
	if f.Drop {
		if hj, ok := c.w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return true
			}
		}
		panic(http.ErrAbortHandler)
	}
	if f.RetryAfter != "" {
		c.w.Header().Set("Retry-After", f.RetryAfter)
	}
	if f.Malformed {
		c.w.Header().Set("Content-Type", "application/json")
		c.w.WriteHeader(http.StatusOK)
		_, _ = c.w.Write([]byte(malformedBody))
		return true
	}
	if f.Status != 0 {
		body := f.Body
		if body == "" {
			body = `{"error": "injected fault"}`
		}
		c.w.Header().Set("Content-Type", "application/json")
		c.w.WriteHeader(f.Status)
		_, _ = c.w.Write([]byte(body))
		return true
	}
	return false
}
