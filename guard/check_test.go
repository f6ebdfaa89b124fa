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
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
			require.Error(t, err, "New = %v, %v; want an error", g, err)
			require.Nil(t, g, "New = %v, %v; want an error", g, err)
			require.ErrorIs(t, err, agenttrust.ErrValidation, "error %v is not a validation error", err)
		})
	}
	n := len(gw.checkBodies()) + gw.reportCalls()
	require.EqualValues(t, 0, n, "%d requests sent", n)
}

func TestSessionID(t *testing.T) {
	c := newClient(t, closedURL(t))
	uuidRE := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	g1, g2 := mustNew(t, c), mustNew(t, c)
	require.True(t, uuidRE.MatchString(g1.SessionID()), "session ids %q, %q: want distinct UUIDv4s", g1.SessionID(), g2.SessionID())
	require.NotEqual(t, g2.SessionID(), g1.SessionID(), "session ids %q, %q: want distinct UUIDv4s", g1.SessionID(), g2.SessionID())
	g := mustNew(t, c, WithSessionID("sess-9"))
	require.Equal(t, "sess-9", g.SessionID(), "SessionID = %q", g.SessionID())
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
		got := classify(tc.caller, tc.own, tc.err)
		assert.Equal(t, tc.want, got, "%s: classify = %d, want %d", tc.name, got, tc.want)
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
					require.NoError(t, err, "Check = %+v, %v; want a fail-open allow", d, err)
					require.True(t, d.Allowed, "Check = %+v, %v; want a fail-open allow", d, err)
					require.True(t, d.FailedOpen, "Check = %+v, %v; want a fail-open allow", d, err)
					require.EqualValues(t, 1, s.Unavailable, "stats %+v", s)
					require.EqualValues(t, 1, s.FailedOpen, "stats %+v", s)
				case f.unavailable:
					var ue *UnavailableError
					require.ErrorAs(t, err, &ue, "Check = %+v, %v; want *UnavailableError", d, err)
					require.False(t, d.Allowed, "Check = %+v, %v; want *UnavailableError", d, err)
					require.Equal(t, "GUARDIAN_UNAVAILABLE", ue.Code, "bad unavailable error %#v: %v", ue, err)
					require.Equal(t, "read_file", ue.Tool, "bad unavailable error %#v: %v", ue, err)
					require.NotNil(t, ue.Cause, "bad unavailable error %#v: %v", ue, err)
					require.ErrorIs(t, err, ErrGuardianUnavailable, "bad unavailable error %#v: %v", ue, err)
					require.ErrorIs(t, err, agenttrust.ErrAgentTrust, "bad unavailable error %#v: %v", ue, err)
					require.NotErrorIs(t, err, ErrDenied, "bad unavailable error %#v: %v", ue, err)
					require.Contains(t, err.Error(), "read_file", "bad unavailable error %#v: %v", ue, err)
					require.NotContains(t, err.Error(), testKey, "error text holds the API key")
					require.EqualValues(t, 1, s.Unavailable, "stats %+v", s)
					require.EqualValues(t, 0, s.FailedOpen, "stats %+v", s)
				default:
					var ae *agenttrust.AgentTrustError
					require.ErrorAs(t, err, &ae, "Check = %+v, %v; want the API error with status %d", d, err, f.status)
					require.Equal(t, f.status, ae.Status, "Check = %+v, %v; want the API error with status %d", d, err, f.status)
					require.False(t, d.Allowed, "Check = %+v, %v; want the API error with status %d", d, err, f.status)
					require.False(t, d.FailedOpen, "Check = %+v, %v; want the API error with status %d", d, err, f.status)
					require.NotErrorIs(t, err, ErrGuardianUnavailable, "API error %v counted as unavailable", err)
					require.EqualValues(t, 0, s.Unavailable, "API error %v counted as unavailable", err)
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
		require.ErrorAs(t, err, &ae, "errors.As gives %+v from %v", ae, err)
		require.EqualValues(t, 503, ae.Status, "errors.As gives %+v from %v", ae, err)
	})
	t.Run("own timeout", func(t *testing.T) {
		url := serveCheck(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		g := mustNew(t, newClient(t, url), WithCheckTimeout(50*time.Millisecond))
		start := time.Now()
		_, err := g.Check(context.Background(), "t", "")
		require.ErrorIs(t, err, context.DeadlineExceeded, "err = %v", err)
		require.ErrorIs(t, err, ErrGuardianUnavailable, "err = %v", err)
		el := time.Since(start)
		require.LessOrEqual(t, el, 2*time.Second, "check took %v despite a 50ms check timeout", el)
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
		require.ErrorIs(t, err, context.Canceled, "Check = %+v, %v; want context.Canceled", d, err)
		require.False(t, d.Allowed, "Check = %+v, %v; want context.Canceled", d, err)
		require.NotErrorIs(t, err, ErrGuardianUnavailable, "Check = %+v, %v; want context.Canceled", d, err)
		s := g.Stats()
		require.EqualValues(t, 0, s.FailedOpen, "stats %+v", s)
		require.EqualValues(t, 0, s.Unavailable, "stats %+v", s)
	})
	t.Run("caller deadline shorter than check timeout", func(t *testing.T) {
		g := mustNew(t, newClient(t, hang(t)), WithFailOpen(true), WithCheckTimeout(10*time.Second))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		d, err := g.Check(ctx, "t", "")
		require.ErrorIs(t, err, context.DeadlineExceeded, "Check = %+v, %v; want the caller's deadline", d, err)
		require.False(t, d.Allowed, "Check = %+v, %v; want the caller's deadline", d, err)
		require.NotErrorIs(t, err, ErrGuardianUnavailable, "Check = %+v, %v; want the caller's deadline", d, err)
	})
	t.Run("already cancelled: no I/O", func(t *testing.T) {
		gw := newGateway(t)
		g := mustNew(t, newClient(t, gw.srv.URL), WithFailOpen(true))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := g.Check(ctx, "t", "")
		require.ErrorIs(t, err, context.Canceled, "err = %v", err)
		n := len(gw.checkBodies())
		require.EqualValues(t, 0, n, "%d checks sent", n)
	})
}

func TestCheckWire(t *testing.T) {
	gw := newGateway(t)
	g := mustNew(t, newClient(t, gw.srv.URL), WithSessionID("sess-1"))
	long := strings.Repeat("é", 150) + strings.Repeat("日本", 100) // 350 runes, multi-byte
	_, err := g.Check(context.Background(), "read_file", long)
	require.NoError(t, err)
	_, err = g.Check(context.Background(), "rm", "", WithEffect(EffectDestructive))
	require.NoError(t, err)
	bodies := gw.checkBodies()
	require.Len(t, bodies, 2, "%d checks", len(bodies))
	b := bodies[0]
	want := map[string]any{"agent_id": "agent-1", "session_id": "sess-1", "action_name": "read_file", "action_source": "api"}
	for k, v := range want {
		assert.Equal(t, v, b[k], "%s = %v, want %v", k, b[k], v)
	}
	sum, _ := b["action_input_summary"].(string)
	assert.Equal(t, strings.Repeat("é", 150)+strings.Repeat("日本", 25), sum, "action_input_summary has %d runes: %q", len([]rune(sum)), sum)
	_, ok := b["action_effect"]
	assert.False(t, ok, "action_effect sent without WithEffect")
	assert.Equal(t, "destructive", bodies[1]["action_effect"], "second check body %v", bodies[1])
	assert.Equal(t, "", bodies[1]["action_input_summary"], "second check body %v", bodies[1])
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
	require.NoError(t, err, "allowed: %+v, %v", d, err)
	require.True(t, d.Allowed, "allowed: %+v, %v", d, err)
	require.Equal(t, "chk-1", d.CheckID, "allowed: %+v, %v", d, err)
	require.False(t, d.ElevationRequired, "allowed: %+v, %v", d, err)
	require.Equal(t, "", d.ApprovalID, "allowed: %+v, %v", d, err)

	d, err = g.Check(ctx, "delete_file", "")
	var de *DeniedError
	require.ErrorAs(t, err, &de, "denied: %+v, %v", d, err)
	require.False(t, d.Allowed, "denied: %+v, %v", d, err)
	require.Equal(t, "ACTION_DENIED", de.Code, "DeniedError %+v", de)
	require.Equal(t, "delete_file", de.Tool, "DeniedError %+v", de)
	require.Equal(t, "destructive", de.Reason, "DeniedError %+v", de)
	require.Equal(t, "chk-7", de.CheckID, "DeniedError %+v", de)
	require.Equal(t, "llm", de.GuardTier, "DeniedError %+v", de)
	require.ErrorIs(t, err, ErrDenied, "denial sentinels wrong for %v", err)
	require.ErrorIs(t, err, agenttrust.ErrActionDenied, "denial sentinels wrong for %v", err)
	require.ErrorIs(t, err, agenttrust.ErrAgentTrust, "denial sentinels wrong for %v", err)
	require.NotErrorIs(t, err, ErrElevationRequired, "denial sentinels wrong for %v", err)
	msg := err.Error()
	require.True(t, strings.HasPrefix(msg, "agenttrust: "), "message %q", msg)
	require.Contains(t, msg, "delete_file", "message %q", msg)
	require.Contains(t, msg, "destructive", "message %q", msg)
	require.NotNil(t, d.Confidence, "decision fields %+v", d)
	require.EqualValues(t, 0.9, *d.Confidence, "decision fields %+v", d)
	require.NotNil(t, d.LatencyMs, "decision fields %+v", d)
	require.EqualValues(t, 4, *d.LatencyMs, "decision fields %+v", d)

	d, err = g.Check(ctx, "wire_money", "")
	var ee *ElevationRequiredError
	require.ErrorAs(t, err, &ee, "elevation: %+v, %v", d, err)
	require.False(t, d.Allowed, "elevation: %+v, %v", d, err)
	require.True(t, d.ElevationRequired, "elevation: %+v, %v", d, err)
	require.Equal(t, "apr-1", d.ApprovalID, "elevation: %+v, %v", d, err)
	require.Equal(t, "ELEVATION_REQUIRED", ee.Code, "ElevationRequiredError %+v", ee)
	require.Equal(t, "apr-1", ee.ApprovalID, "ElevationRequiredError %+v", ee)
	require.Equal(t, "needs a human", ee.Reason, "ElevationRequiredError %+v", ee)
	require.Equal(t, "apr-1", ee.Details()["approval_id"], "ElevationRequiredError %+v", ee)
	require.ErrorIs(t, err, ErrElevationRequired, "elevation sentinels wrong for %v", err)
	require.ErrorIs(t, err, ErrDenied, "elevation sentinels wrong for %v", err)
	require.ErrorIs(t, err, agenttrust.ErrAgentTrust, "elevation sentinels wrong for %v", err)
	s := g.Stats()
	require.EqualValues(t, 3, s.Checks, "stats %+v", s)
	require.EqualValues(t, 2, s.Denied, "stats %+v", s)
	require.EqualValues(t, 0, s.Unavailable, "stats %+v", s)

	nb := mustNew(t, c, WithBlockOnDeny(false))
	d, err = nb.Check(ctx, "delete_file", "")
	require.NoError(t, err, "non-blocking denial: %+v, %v", d, err)
	require.False(t, d.Allowed, "non-blocking denial: %+v, %v", d, err)
	require.Equal(t, "destructive", d.Reason, "non-blocking denial: %+v, %v", d, err)
	require.Equal(t, "chk-7", d.CheckID, "non-blocking denial: %+v, %v", d, err)
	require.Error(t, DenialError("delete_file", d), "DenialError of a denial")
	require.ErrorIs(t, DenialError("delete_file", d), ErrDenied, "DenialError of a denial")
	d, err = nb.Check(ctx, "wire_money", "")
	require.NoError(t, err, "non-blocking elevation: %+v, %v", d, err)
	require.False(t, d.Allowed, "non-blocking elevation: %+v, %v", d, err)
	require.True(t, d.ElevationRequired, "non-blocking elevation: %+v, %v", d, err)
	require.Equal(t, "apr-1", d.ApprovalID, "non-blocking elevation: %+v, %v", d, err)
	require.ErrorIs(t, DenialError("wire_money", d), ErrElevationRequired, "DenialError of an elevation")
}

func TestCheckBeforeIO(t *testing.T) {
	gw := newGateway(t)
	g := mustNew(t, newClient(t, gw.srv.URL), WithFailOpen(true))
	d, err := g.Check(context.Background(), "", "x")
	require.ErrorIs(t, err, agenttrust.ErrValidation, "empty tool: %+v, %v", d, err)
	require.False(t, d.Allowed, "empty tool: %+v, %v", d, err)
	//lint:ignore SA1012 testing the nil check
	_, err = g.Check(nil, "t", "x") //nolint:staticcheck
	require.ErrorIs(t, err, agenttrust.ErrValidation, "nil ctx: %v", err)
	require.NoError(t, g.Close(context.Background()))
	d, err = g.Check(context.Background(), "t", "x")
	require.ErrorIs(t, err, ErrClosed, "after Close: %+v, %v", d, err)
	require.False(t, d.Allowed, "after Close: %+v, %v", d, err)
	n := len(gw.checkBodies())
	require.EqualValues(t, 0, n, "%d checks sent", n)
}

func TestSummaries(t *testing.T) {
	got := LengthSummary("héllo 日本")
	assert.Equal(t, "[8 chars]", got, "LengthSummary = %q", got)
	got = LengthSummary("")
	assert.Equal(t, "[0 chars]", got, "LengthSummary empty = %q", got)
	got = TruncateRunes("日本語テキスト", 3)
	assert.Equal(t, "日本語", got, "TruncateRunes = %q", got)
	type myErr struct{ error }
	got = ErrorTypeOf(&myErr{errors.New("secret text")})
	assert.Equal(t, "*guard.myErr", got, "ErrorTypeOf = %q", got)
	assert.Equal(t, "", ErrorTypeOf(nil), "ErrorTypeOf(nil)")
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
			require.EqualValues(t, 0, s.Unavailable, "%s (failOpen=%v): counted as unavailable: %+v, %v, stats %+v", tc.body, open, d, err, s)
			require.EqualValues(t, 0, s.FailedOpen, "%s (failOpen=%v): counted as unavailable: %+v, %v, stats %+v", tc.body, open, d, err, s)
			require.False(t, d.FailedOpen, "%s (failOpen=%v): counted as unavailable: %+v, %v, stats %+v", tc.body, open, d, err, s)
			require.Equal(t, tc.allowed, d.Allowed, "%s (failOpen=%v): Decision %+v, %v", tc.body, open, d, err)
			require.Equal(t, "chk-1", d.CheckID, "%s (failOpen=%v): Decision %+v, %v", tc.body, open, d, err)
			var de *DeniedError
			var ee *ElevationRequiredError
			switch {
			case tc.allowed:
				require.NoError(t, err, "%s: allowed with error", tc.body)
			case tc.elevation:
				require.ErrorAs(t, err, &ee, "%s (failOpen=%v): want *ElevationRequiredError, got %v", tc.body, open, err)
				require.Equal(t, "ap-1", ee.ApprovalID, "%s (failOpen=%v): want *ElevationRequiredError, got %v", tc.body, open, err)
			default:
				require.ErrorAs(t, err, &de, "%s (failOpen=%v): want a plain *DeniedError, got %v", tc.body, open, err)
				require.NotErrorIs(t, err, ErrElevationRequired, "%s (failOpen=%v): want a plain *DeniedError, got %v", tc.body, open, err)
				require.Equal(t, "no", de.Reason, "%s (failOpen=%v): want a plain *DeniedError, got %v", tc.body, open, err)
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
		require.NoError(t, err)
		g := mustNew(t, c, WithFailOpen(open))
		start := time.Now()
		d, err := g.Check(context.Background(), "read_file", "")
		el := time.Since(start)
		assert.LessOrEqual(t, el, time.Second, "failOpen=%v: check took %v", open, el)
		n := len(gw.checkBodies())
		assert.EqualValues(t, 1, n, "failOpen=%v: %d check requests, want 1", open, n)
		if open {
			require.NoError(t, err, "fail-open: %+v, %v", d, err)
			require.True(t, d.Allowed, "fail-open: %+v, %v", d, err)
			require.True(t, d.FailedOpen, "fail-open: %+v, %v", d, err)
			continue
		}
		var rl *agenttrust.RateLimitError
		require.ErrorIs(t, err, ErrGuardianUnavailable, "fail-closed: %v; want *UnavailableError caused by a *RateLimitError", err)
		require.ErrorAs(t, err, &rl, "fail-closed: %v; want *UnavailableError caused by a *RateLimitError", err)
		require.Equal(t, 30*time.Second, rl.RetryAfter, "fail-closed: %v; want *UnavailableError caused by a *RateLimitError", err)
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
	// The port may take a moment to free up.
	require.Eventually(r.t, func() bool {
		var err error
		ln, err = net.Listen("tcp", r.addr)
		return err == nil
	}, waitFor, 10*time.Millisecond, "listening again on %s", r.addr)
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
	require.NoError(t, err)
	g := mustNew(t, c)
	var checks, failed, slow atomic.Int64
	var firstErr atomic.Value
	// restartedAt is when the gateway came back (UnixNano, 0 before);
	// caughtUp counts the workers that have since completed a check begun
	// after it, so every check begun in the outage has ended.
	var restartedAt, caughtUp atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			caught := false
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				d, err := g.Check(context.Background(), "read_file", "")
				checks.Add(1)
				if at := restartedAt.Load(); !caught && at != 0 && start.UnixNano() > at {
					caught = true
					caughtUp.Add(1)
				}
				if time.Since(start) > outage/4 {
					slow.Add(1) // this check waited through (part of) the outage
				}
				if err != nil || !d.Allowed {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%+v, %v", d, err))
				}
				// Pacing, not synchronisation: a steady load rather than a
				// busy loop on two shared cores.
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	// The workers are checking before the gateway goes away.
	require.Eventually(t, func() bool { return checks.Load() >= 2*workers }, waitFor, pollEvery, "checks under way")
	srv.stop()
	// The outage itself is what is under test: the gateway stays away for
	// this long while the checks retry.
	time.Sleep(outage)
	srv.start()
	restartedAt.Store(time.Now().UnixNano())
	require.Eventually(t, func() bool { return caughtUp.Load() == workers }, DefaultCheckTimeout+waitFor, pollEvery,
		"every worker completes a check begun after the restart")
	close(stop)
	wg.Wait()
	t.Logf("%d checks, %d of them through the %v outage, %d failed", checks.Load(), slow.Load(), outage, failed.Load())
	require.EqualValues(t, 0, failed.Load(), "%d of %d checks failed across a %v restart; first: %v", failed.Load(), checks.Load(), outage, firstErr.Load())
	require.GreaterOrEqual(t, slow.Load(), int64(workers), "only %d checks spanned the outage; the test did not exercise it", slow.Load())
}

// TestCheckRetryLoopYieldsToCaller: while a check retries a gateway that is
// down, the caller's cancellation ends it at once, with the caller's error
// and no fail-open.
func TestCheckRetryLoopYieldsToCaller(t *testing.T) {
	c, err := agenttrust.New(agenttrust.WithBaseURL(closedURL(t)), agenttrust.WithAPIKey(testKey)) // the default backoff
	require.NoError(t, err)
	g := mustNew(t, c, WithFailOpen(true))
	ctx, cancel := context.WithCancel(context.Background())
	// Past the 2 retries the policy alone allows (about 0.75 s at most), so
	// the check is still retrying within its 3 s timeout.
	time.AfterFunc(1200*time.Millisecond, cancel)
	start := time.Now()
	d, err := g.Check(ctx, "read_file", "")
	el := time.Since(start)
	require.ErrorIs(t, err, context.Canceled, "Check = %+v, %v; want context.Canceled", d, err)
	require.False(t, d.Allowed, "Check = %+v, %v; want context.Canceled", d, err)
	require.False(t, d.FailedOpen, "Check = %+v, %v; want context.Canceled", d, err)
	require.GreaterOrEqual(t, el, 1150*time.Millisecond, "returned after %v; want soon after the 1.2s cancellation", el)
	require.LessOrEqual(t, el, 1800*time.Millisecond, "returned after %v; want soon after the 1.2s cancellation", el)
	s := g.Stats()
	require.EqualValues(t, 0, s.FailedOpen, "stats %+v", s)
	require.EqualValues(t, 0, s.Unavailable, "stats %+v", s)
}
