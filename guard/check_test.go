package guard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
)

func TestNewValidatesBeforeIO(t *testing.T) {
	gw := newGateway(t)
	c := newClient(t, gw.srv.URL)
	cases := []struct {
		name   string
		client *agenttrust.Client
		agent  string
		opts   []Option
	}{
		{"nil client", nil, "a", nil},
		{"empty agent", c, "", nil},
		{"empty session", c, "a", []Option{WithSessionID("")}},
		{"zero check timeout", c, "a", []Option{WithCheckTimeout(0)}},
		{"negative interval", c, "a", []Option{WithFlushInterval(-time.Second)}},
		{"zero batch", c, "a", []Option{WithBatchSize(0)}},
		{"zero capacity", c, "a", []Option{WithQueueCapacity(0)}},
		{"capacity below batch", c, "a", []Option{WithBatchSize(20), WithQueueCapacity(10)}},
		{"zero attempts", c, "a", []Option{WithSendAttempts(0)}},
		{"zero send timeout", c, "a", []Option{WithSendTimeout(0)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, err := New(tc.client, tc.agent, tc.opts...)
			if err == nil || g != nil {
				t.Fatalf("New = %v, %v; want an error", g, err)
			}
			if !errors.Is(err, agenttrust.ErrValidation) {
				t.Fatalf("error %v is not a validation error", err)
			}
		})
	}
	if n := len(gw.checkBodies()) + gw.reportCalls(); n != 0 {
		t.Fatalf("%d requests sent", n)
	}
}

func TestSessionID(t *testing.T) {
	c := newClient(t, closedURL(t))
	uuidRE := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	g1, g2 := mustNew(t, c), mustNew(t, c)
	if !uuidRE.MatchString(g1.SessionID()) || g1.SessionID() == g2.SessionID() {
		t.Fatalf("session ids %q, %q: want distinct UUIDv4s", g1.SessionID(), g2.SessionID())
	}
	if g := mustNew(t, c, WithSessionID("sess-9")); g.SessionID() != "sess-9" {
		t.Fatalf("SessionID = %q", g.SessionID())
	}
}

func TestClassify(t *testing.T) {
	apiErr := func(status int) error {
		code := fmt.Sprintf("HTTP_%d", status)
		switch status {
		case 400:
			code = agenttrust.CodeValidation
		case 401:
			code = agenttrust.CodeAuthFailed
		case 403:
			code = agenttrust.CodeAuthDenied
		case 404:
			code = agenttrust.CodeNotFound
		case 429:
			code = agenttrust.CodeRateLimited
		}
		return &agenttrust.AgentTrustError{Status: status, Code: code}
	}
	netErr := agenttrust.NewError(agenttrust.CodeNetwork, "Network error: refused", errors.New("connection refused"))
	deadlineNet := agenttrust.NewError(agenttrust.CodeNetwork, "Network error", context.DeadlineExceeded)
	decodeErr := agenttrust.NewError(agenttrust.CodeDecode, "Decode error", nil)
	validation := agenttrust.NewError(agenttrust.CodeValidation, "missing", nil)
	cases := []struct {
		name             string
		caller, own, err error
		want             outcome
	}{
		{"network", nil, nil, netErr, outcomeUnavailable},
		{"own timeout", nil, context.DeadlineExceeded, deadlineNet, outcomeUnavailable},
		{"raw own deadline", nil, context.DeadlineExceeded, context.DeadlineExceeded, outcomeUnavailable},
		{"caller cancelled", context.Canceled, nil, netErr, outcomeCaller},
		{"caller deadline beats own", context.DeadlineExceeded, context.DeadlineExceeded, deadlineNet, outcomeCaller},
		{"caller cancelled on 401", context.Canceled, nil, apiErr(401), outcomeCaller},
		{"500", nil, nil, apiErr(500), outcomeUnavailable},
		{"502", nil, nil, apiErr(502), outcomeUnavailable},
		{"503", nil, nil, apiErr(503), outcomeUnavailable},
		{"599", nil, nil, apiErr(599), outcomeUnavailable},
		{"429", nil, nil, apiErr(429), outcomeUnavailable},
		{"decode", nil, nil, decodeErr, outcomeUnavailable},
		{"400", nil, nil, apiErr(400), outcomeFail},
		{"401", nil, nil, apiErr(401), outcomeFail},
		{"403", nil, nil, apiErr(403), outcomeFail},
		{"404", nil, nil, apiErr(404), outcomeFail},
		{"409", nil, nil, apiErr(409), outcomeFail},
		{"302", nil, nil, apiErr(302), outcomeFail},
		{"401 after own deadline", nil, context.DeadlineExceeded, apiErr(401), outcomeFail},
		{"validation before I/O", nil, nil, validation, outcomeFail},
		{"foreign error", nil, nil, errors.New("boom"), outcomeFail},
	}
	for _, tc := range cases {
		if got := classify(tc.caller, tc.own, tc.err); got != tc.want {
			t.Errorf("%s: classify = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// failure is one way a check can fail on loopback.
type failure struct {
	name        string
	unavailable bool // true: may fail open; false: the API error is returned
	status      int  // the status of the returned API error (not unavailable)
	setup       func(t *testing.T) string
}

func serveCheck(t *testing.T, h http.HandlerFunc) string {
	gw := newGateway(t)
	gw.setCheck(func(w http.ResponseWriter, r *http.Request, _ map[string]any) { h(w, r) })
	return gw.srv.URL
}

func answer(status int, body string, hdr ...string) func(t *testing.T) string {
	return func(t *testing.T) string {
		return serveCheck(t, func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i+1 < len(hdr); i += 2 {
				w.Header().Set(hdr[i], hdr[i+1])
			}
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		})
	}
}

func failures() []failure {
	return []failure{
		{name: "closed listener", unavailable: true, setup: func(t *testing.T) string { return closedURL(t) }},
		{name: "hanging handler", unavailable: true, setup: func(t *testing.T) string {
			return serveCheck(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		}},
		{name: "500", unavailable: true, setup: answer(500, `{"error":"boom"}`)},
		{name: "503 Retry-After", unavailable: true, setup: answer(503, `{"error":"down"}`, "Retry-After", "1")},
		{name: "429", unavailable: true, setup: answer(429, `{"error":"slow down"}`, "Retry-After", "1")},
		{name: "non-JSON 2xx", unavailable: true, setup: answer(200, `<html>ok</html>`)},
		{name: "empty 2xx", unavailable: true, setup: answer(200, ``)},
		{name: "allowed missing", unavailable: true, setup: answer(200, `{}`)},
		{name: "allowed yes", unavailable: true, setup: answer(200, `{"allowed":"yes"}`)},
		{name: "allowed string false", unavailable: true, setup: answer(200, `{"allowed":"false"}`)},
		{name: "array", unavailable: true, setup: answer(200, `[true]`)},
		{name: "400", status: 400, setup: answer(400, `{"message":"bad"}`)},
		{name: "401", status: 401, setup: answer(401, `{"message":"Invalid credentials"}`)},
		{name: "403", status: 403, setup: answer(403, `{"error":"forbidden"}`)},
		{name: "404", status: 404, setup: answer(404, `{"error":"not found"}`)},
		{name: "302", status: 302, setup: answer(302, ``, "Location", "http://example.invalid/")},
	}
}

func TestCheckFailures(t *testing.T) {
	for _, f := range failures() {
		for _, open := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/failOpen=%v", f.name, open), func(t *testing.T) {
				t.Parallel()
				g := mustNew(t, newClient(t, f.setup(t)), WithFailOpen(open), WithCheckTimeout(150*time.Millisecond))
				d, err := g.Check(context.Background(), "read_file", "x")
				s := g.Stats()
				switch {
				case f.unavailable && open:
					if err != nil || !d.Allowed || !d.FailedOpen {
						t.Fatalf("Check = %+v, %v; want a fail-open allow", d, err)
					}
					if s.Unavailable != 1 || s.FailedOpen != 1 {
						t.Fatalf("stats %+v", s)
					}
				case f.unavailable:
					var ue *UnavailableError
					if !errors.As(err, &ue) || d.Allowed {
						t.Fatalf("Check = %+v, %v; want *UnavailableError", d, err)
					}
					if ue.Code != "GUARDIAN_UNAVAILABLE" || ue.Tool != "read_file" || ue.Cause == nil ||
						!errors.Is(err, ErrGuardianUnavailable) || !errors.Is(err, agenttrust.ErrAgentTrust) ||
						errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "read_file") {
						t.Fatalf("bad unavailable error %#v: %v", ue, err)
					}
					if strings.Contains(err.Error(), testKey) {
						t.Fatal("error text holds the API key")
					}
					if s.Unavailable != 1 || s.FailedOpen != 0 {
						t.Fatalf("stats %+v", s)
					}
				default:
					var ae *agenttrust.AgentTrustError
					if !errors.As(err, &ae) || ae.Status != f.status || d.Allowed || d.FailedOpen {
						t.Fatalf("Check = %+v, %v; want the API error with status %d", d, err, f.status)
					}
					if errors.Is(err, ErrGuardianUnavailable) || s.Unavailable != 0 {
						t.Fatalf("API error %v counted as unavailable", err)
					}
				}
			})
		}
	}
}

func TestCheckUnavailableCauseReachable(t *testing.T) {
	t.Run("503", func(t *testing.T) {
		g := mustNew(t, newClient(t, answer(503, `{"error":"down"}`)(t)), WithCheckTimeout(300*time.Millisecond))
		_, err := g.Check(context.Background(), "t", "")
		var ae *agenttrust.AgentTrustError
		if !errors.As(err, &ae) || ae.Status != 503 {
			t.Fatalf("errors.As gives %+v from %v", ae, err)
		}
	})
	t.Run("own timeout", func(t *testing.T) {
		url := serveCheck(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		g := mustNew(t, newClient(t, url), WithCheckTimeout(50*time.Millisecond))
		start := time.Now()
		_, err := g.Check(context.Background(), "t", "")
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrGuardianUnavailable) {
			t.Fatalf("err = %v", err)
		}
		if el := time.Since(start); el > 2*time.Second {
			t.Fatalf("check took %v despite a 50ms check timeout", el)
		}
	})
}

func TestCheckCallerCancellation(t *testing.T) {
	hang := func(t *testing.T) string {
		return serveCheck(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	}
	t.Run("cancelled mid-check with FailOpen", func(t *testing.T) {
		g := mustNew(t, newClient(t, hang(t)), WithFailOpen(true))
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(30*time.Millisecond, cancel)
		d, err := g.Check(ctx, "t", "")
		if !errors.Is(err, context.Canceled) || d.Allowed || errors.Is(err, ErrGuardianUnavailable) {
			t.Fatalf("Check = %+v, %v; want context.Canceled", d, err)
		}
		if s := g.Stats(); s.FailedOpen != 0 || s.Unavailable != 0 {
			t.Fatalf("stats %+v", s)
		}
	})
	t.Run("caller deadline shorter than check timeout", func(t *testing.T) {
		g := mustNew(t, newClient(t, hang(t)), WithFailOpen(true), WithCheckTimeout(10*time.Second))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		d, err := g.Check(ctx, "t", "")
		if !errors.Is(err, context.DeadlineExceeded) || d.Allowed || errors.Is(err, ErrGuardianUnavailable) {
			t.Fatalf("Check = %+v, %v; want the caller's deadline", d, err)
		}
	})
	t.Run("already cancelled: no I/O", func(t *testing.T) {
		gw := newGateway(t)
		g := mustNew(t, newClient(t, gw.srv.URL), WithFailOpen(true))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := g.Check(ctx, "t", ""); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		if n := len(gw.checkBodies()); n != 0 {
			t.Fatalf("%d checks sent", n)
		}
	})
}

func TestCheckWire(t *testing.T) {
	gw := newGateway(t)
	g := mustNew(t, newClient(t, gw.srv.URL), WithSessionID("sess-1"))
	long := strings.Repeat("é", 150) + strings.Repeat("日本", 100) // 350 runes, multi-byte
	if _, err := g.Check(context.Background(), "read_file", long); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Check(context.Background(), "rm", "", WithEffect(EffectDestructive)); err != nil {
		t.Fatal(err)
	}
	bodies := gw.checkBodies()
	if len(bodies) != 2 {
		t.Fatalf("%d checks", len(bodies))
	}
	b := bodies[0]
	want := map[string]any{"agent_id": "agent-1", "session_id": "sess-1", "action_name": "read_file", "action_source": "api"}
	for k, v := range want {
		if b[k] != v {
			t.Errorf("%s = %v, want %v", k, b[k], v)
		}
	}
	sum, _ := b["action_input_summary"].(string)
	if wantSum := strings.Repeat("é", 150) + strings.Repeat("日本", 25); sum != wantSum {
		t.Errorf("action_input_summary has %d runes: %q", len([]rune(sum)), sum)
	}
	if _, ok := b["action_effect"]; ok {
		t.Error("action_effect sent without WithEffect")
	}
	if bodies[1]["action_effect"] != "destructive" || bodies[1]["action_input_summary"] != "" {
		t.Errorf("second check body %v", bodies[1])
	}
}

func TestCheckOutcomes(t *testing.T) {
	gw := newGateway(t)
	gw.setCheck(func(w http.ResponseWriter, r *http.Request, body map[string]any) {
		switch body["action_name"] {
		case "delete_file":
			writeJSON(w, 200, `{"allowed": false, "reason": "destructive", "check_id": "chk-7", "guard_tier": "llm", "confidence": 0.9, "latency_ms": 4}`)
		case "wire_money":
			writeJSON(w, 200, `{"allowed": false, "reason": "needs a human", "check_id": "chk-8", "guard_tier": "fast", "elevation_required": true, "approval_id": "apr-1"}`)
		default:
			writeJSON(w, 200, `{"allowed": true, "check_id": "chk-1", "guard_tier": "fast", "elevation_required": true, "approval_id": "ignored"}`)
		}
	})
	c := newClient(t, gw.srv.URL)
	ctx := context.Background()

	g := mustNew(t, c)
	d, err := g.Check(ctx, "read_file", "")
	if err != nil || !d.Allowed || d.CheckID != "chk-1" || d.ElevationRequired || d.ApprovalID != "" {
		t.Fatalf("allowed: %+v, %v", d, err)
	}

	d, err = g.Check(ctx, "delete_file", "")
	var de *DeniedError
	if !errors.As(err, &de) || d.Allowed {
		t.Fatalf("denied: %+v, %v", d, err)
	}
	if de.Code != "ACTION_DENIED" || de.Tool != "delete_file" || de.Reason != "destructive" || de.CheckID != "chk-7" || de.GuardTier != "llm" {
		t.Fatalf("DeniedError %+v", de)
	}
	if !errors.Is(err, ErrDenied) || !errors.Is(err, agenttrust.ErrActionDenied) || !errors.Is(err, agenttrust.ErrAgentTrust) || errors.Is(err, ErrElevationRequired) {
		t.Fatalf("denial sentinels wrong for %v", err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "agenttrust: ") || !strings.Contains(msg, "delete_file") || !strings.Contains(msg, "destructive") {
		t.Fatalf("message %q", msg)
	}
	if d.Confidence == nil || *d.Confidence != 0.9 || d.LatencyMs == nil || *d.LatencyMs != 4 {
		t.Fatalf("decision fields %+v", d)
	}

	d, err = g.Check(ctx, "wire_money", "")
	var ee *ElevationRequiredError
	if !errors.As(err, &ee) || d.Allowed || !d.ElevationRequired || d.ApprovalID != "apr-1" {
		t.Fatalf("elevation: %+v, %v", d, err)
	}
	if ee.Code != "ELEVATION_REQUIRED" || ee.ApprovalID != "apr-1" || ee.Reason != "needs a human" || ee.Details()["approval_id"] != "apr-1" {
		t.Fatalf("ElevationRequiredError %+v", ee)
	}
	if !errors.Is(err, ErrElevationRequired) || !errors.Is(err, ErrDenied) || !errors.Is(err, agenttrust.ErrAgentTrust) {
		t.Fatalf("elevation sentinels wrong for %v", err)
	}
	if s := g.Stats(); s.Checks != 3 || s.Denied != 2 || s.Unavailable != 0 {
		t.Fatalf("stats %+v", s)
	}

	nb := mustNew(t, c, WithBlockOnDeny(false))
	d, err = nb.Check(ctx, "delete_file", "")
	if err != nil || d.Allowed || d.Reason != "destructive" || d.CheckID != "chk-7" {
		t.Fatalf("non-blocking denial: %+v, %v", d, err)
	}
	if DenialError("delete_file", d) == nil || !errors.Is(DenialError("delete_file", d), ErrDenied) {
		t.Fatal("DenialError of a denial")
	}
	d, err = nb.Check(ctx, "wire_money", "")
	if err != nil || d.Allowed || !d.ElevationRequired || d.ApprovalID != "apr-1" {
		t.Fatalf("non-blocking elevation: %+v, %v", d, err)
	}
	if !errors.Is(DenialError("wire_money", d), ErrElevationRequired) {
		t.Fatal("DenialError of an elevation")
	}
}

func TestCheckBeforeIO(t *testing.T) {
	gw := newGateway(t)
	g := mustNew(t, newClient(t, gw.srv.URL), WithFailOpen(true))
	if d, err := g.Check(context.Background(), "", "x"); !errors.Is(err, agenttrust.ErrValidation) || d.Allowed {
		t.Fatalf("empty tool: %+v, %v", d, err)
	}
	//lint:ignore SA1012 testing the nil check
	if _, err := g.Check(nil, "t", "x"); !errors.Is(err, agenttrust.ErrValidation) { //nolint:staticcheck
		t.Fatalf("nil ctx: %v", err)
	}
	if err := g.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d, err := g.Check(context.Background(), "t", "x"); !errors.Is(err, ErrClosed) || d.Allowed {
		t.Fatalf("after Close: %+v, %v", d, err)
	}
	if n := len(gw.checkBodies()); n != 0 {
		t.Fatalf("%d checks sent", n)
	}
}

func TestSummaries(t *testing.T) {
	if got := LengthSummary("héllo 日本"); got != "[8 chars]" {
		t.Errorf("LengthSummary = %q", got)
	}
	if got := LengthSummary(""); got != "[0 chars]" {
		t.Errorf("LengthSummary empty = %q", got)
	}
	if got := TruncateRunes("日本語テキスト", 3); got != "日本語" {
		t.Errorf("TruncateRunes = %q", got)
	}
	type myErr struct{ error }
	if got := ErrorTypeOf(&myErr{errors.New("secret text")}); got != "*guard.myErr" {
		t.Errorf("ErrorTypeOf = %q", got)
	}
	if ErrorTypeOf(nil) != "" {
		t.Error("ErrorTypeOf(nil)")
	}
}

// TestCheckDecisionIsAllowedAlone: a field of the wrong type
// other than "allowed" never changes the decision. An explicit deny stays a
// deny even with fail-open, and an allow is not lost when fail-closed. A
// wrong-typed elevation_required is a plain denial.
func TestCheckDecisionIsAllowedAlone(t *testing.T) {
	cases := []struct {
		body      string
		allowed   bool
		elevation bool
	}{
		{`{"allowed": false, "reason": "no", "check_id": "chk-1", "latency_ms": 12.5}`, false, false},
		{`{"allowed": false, "reason": "no", "check_id": "chk-1", "confidence": "high"}`, false, false},
		{`{"allowed": false, "reason": "no", "check_id": "chk-1", "elevation_required": "yes", "approval_id": "ap-1"}`, false, false},
		{`{"allowed": false, "reason": "no", "check_id": "chk-1", "elevation_required": true, "approval_id": "ap-1", "latency_ms": "4"}`, false, true},
		{`{"allowed": true, "check_id": "chk-1", "latency_ms": 12.5}`, true, false},
		{`{"allowed": true, "check_id": "chk-1", "confidence": "high", "guard_tier": 3}`, true, false},
	}
	for _, tc := range cases {
		for _, open := range []bool{true, false} {
			url := answer(200, tc.body)(t)
			g := mustNew(t, newClient(t, url), WithFailOpen(open))
			d, err := g.Check(context.Background(), "delete_file", "")
			s := g.Stats()
			if s.Unavailable != 0 || s.FailedOpen != 0 || d.FailedOpen {
				t.Fatalf("%s (failOpen=%v): counted as unavailable: %+v, %v, stats %+v", tc.body, open, d, err, s)
			}
			if d.Allowed != tc.allowed || d.CheckID != "chk-1" {
				t.Fatalf("%s (failOpen=%v): Decision %+v, %v", tc.body, open, d, err)
			}
			var de *DeniedError
			var ee *ElevationRequiredError
			switch {
			case tc.allowed:
				if err != nil {
					t.Fatalf("%s: allowed with error %v", tc.body, err)
				}
			case tc.elevation:
				if !errors.As(err, &ee) || ee.ApprovalID != "ap-1" {
					t.Fatalf("%s (failOpen=%v): want *ElevationRequiredError, got %v", tc.body, open, err)
				}
			default:
				if !errors.As(err, &de) || errors.Is(err, ErrElevationRequired) || de.Reason != "no" {
					t.Fatalf("%s (failOpen=%v): want a plain *DeniedError, got %v", tc.body, open, err)
				}
			}
		}
	}
}

// TestCheckRetryAfterBeyondTimeout: a 429 whose Retry-After does not fit in
// the check timeout ends the check at once, with the rate-limit error as the
// cause, instead of stalling for the whole timeout.
func TestCheckRetryAfterBeyondTimeout(t *testing.T) {
	for _, open := range []bool{false, true} {
		gw := newGateway(t)
		gw.setCheck(func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
			w.Header().Set("Retry-After", "30")
			writeJSON(w, 429, `{"error":"slow down"}`)
		})
		// The default retry policy: Retry-After honoured up to 10 s.
		c, err := agenttrust.New(agenttrust.WithBaseURL(gw.srv.URL), agenttrust.WithAPIKey(testKey))
		if err != nil {
			t.Fatal(err)
		}
		g := mustNew(t, c, WithFailOpen(open))
		start := time.Now()
		d, err := g.Check(context.Background(), "read_file", "")
		if el := time.Since(start); el > time.Second {
			t.Errorf("failOpen=%v: check took %v", open, el)
		}
		if n := len(gw.checkBodies()); n != 1 {
			t.Errorf("failOpen=%v: %d check requests, want 1", open, n)
		}
		if open {
			if err != nil || !d.Allowed || !d.FailedOpen {
				t.Fatalf("fail-open: %+v, %v", d, err)
			}
			continue
		}
		var rl *agenttrust.RateLimitError
		if !errors.Is(err, ErrGuardianUnavailable) || !errors.As(err, &rl) || rl.RetryAfter != 30*time.Second {
			t.Fatalf("fail-closed: %v; want *UnavailableError caused by a *RateLimitError", err)
		}
	}
}

// restartable is a loopback HTTP server that can be stopped and started
// again on the same port.
type restartable struct {
	t    *testing.T
	addr string
	h    http.Handler
	mu   sync.Mutex
	srv  *http.Server
	done chan struct{}
}

func newRestartable(t *testing.T, h http.Handler) *restartable {
	r := &restartable{t: t, addr: "127.0.0.1:0", h: h}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *restartable) start() {
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the port may take a moment to free up
		if ln, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("listening again on %s: %v", r.addr, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addr = ln.Addr().String()
	r.srv = &http.Server{Handler: r.h}
	r.done = make(chan struct{})
	go func(srv *http.Server, done chan struct{}) {
		defer close(done)
		_ = srv.Serve(ln)
	}(r.srv, r.done)
}

// stop closes the listener and every connection, in flight or idle.
func (r *restartable) stop() {
	r.mu.Lock()
	srv, done := r.srv, r.done
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
		<-done
	}
}

// TestCheckRidesOutRestart: 64 goroutines of fail-closed
// checks against a gateway that goes away for 2 s and comes back on the same
// port lose no check: each check keeps retrying within its 3 s timeout. With
// only the client's 2 retries (250 ms, 500 ms) checks fail after about 0.75 s.
func TestCheckRidesOutRestart(t *testing.T) {
	outage := 2 * time.Second
	if testing.Short() {
		outage = time.Second
	}
	const workers = 64
	srv := newRestartable(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		writeJSON(w, 200, `{"allowed": true, "check_id": "chk-1"}`)
	}))
	// The default retry policy and check timeout: what a user gets.
	c, err := agenttrust.New(agenttrust.WithBaseURL("http://"+srv.addr), agenttrust.WithAPIKey(testKey))
	if err != nil {
		t.Fatal(err)
	}
	g := mustNew(t, c)
	var checks, failed, slow atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				d, err := g.Check(context.Background(), "read_file", "")
				checks.Add(1)
				if time.Since(start) > outage/4 {
					slow.Add(1) // this check waited through (part of) the outage
				}
				if err != nil || !d.Allowed {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%+v, %v", d, err))
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	srv.stop()
	time.Sleep(outage)
	srv.start()
	time.Sleep(DefaultCheckTimeout - outage + 500*time.Millisecond) // every check begun in the outage ends
	close(stop)
	wg.Wait()
	t.Logf("%d checks, %d of them through the %v outage, %d failed", checks.Load(), slow.Load(), outage, failed.Load())
	if failed.Load() != 0 {
		t.Fatalf("%d of %d checks failed across a %v restart; first: %v", failed.Load(), checks.Load(), outage, firstErr.Load())
	}
	if slow.Load() < workers {
		t.Fatalf("only %d checks spanned the outage; the test did not exercise it", slow.Load())
	}
}

// TestCheckRetryLoopYieldsToCaller: while a check retries a gateway that is
// down, the caller's cancellation ends it at once, with the caller's error
// and no fail-open.
func TestCheckRetryLoopYieldsToCaller(t *testing.T) {
	c, err := agenttrust.New(agenttrust.WithBaseURL(closedURL(t)), agenttrust.WithAPIKey(testKey)) // the default backoff
	if err != nil {
		t.Fatal(err)
	}
	g := mustNew(t, c, WithFailOpen(true))
	ctx, cancel := context.WithCancel(context.Background())
	// Past the 2 retries the policy alone allows (about 0.75 s at most), so
	// the check is still retrying within its 3 s timeout.
	time.AfterFunc(1200*time.Millisecond, cancel)
	start := time.Now()
	d, err := g.Check(ctx, "read_file", "")
	el := time.Since(start)
	if !errors.Is(err, context.Canceled) || d.Allowed || d.FailedOpen {
		t.Fatalf("Check = %+v, %v; want context.Canceled", d, err)
	}
	if el < 1150*time.Millisecond || el > 1800*time.Millisecond {
		t.Fatalf("returned after %v; want soon after the 1.2s cancellation", el)
	}
	if s := g.Stats(); s.FailedOpen != 0 || s.Unavailable != 0 {
		t.Fatalf("stats %+v", s)
	}
}
