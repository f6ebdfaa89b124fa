package agenttrust

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

var ts0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func TestTokenExpiryAndTTL(t *testing.T) {
	clk := newFakeClock(ts0)
	tok := &Token{ExpiresAt: ts0.Add(90*time.Second + 900*time.Millisecond), now: clk.Now}
	cases := []struct {
		at      time.Duration
		ttl     time.Duration
		expired bool
	}{
		{0, 90 * time.Second, false},
		{900 * time.Millisecond, 90 * time.Second, false},
		{60*time.Second + 100*time.Millisecond, 30 * time.Second, false},
		{90*time.Second + 900*time.Millisecond, 0, false}, // exactly at expiry: not yet strictly after
		{91 * time.Second, 0, true},
		{time.Hour, 0, true},
	}
	for _, tc := range cases {
		clk.t = ts0.Add(tc.at)
		if tok.TTL() != tc.ttl || tok.IsExpired() != tc.expired {
			t.Errorf("at +%v: TTL %v expired %v, want %v %v", tc.at, tok.TTL(), tok.IsExpired(), tc.ttl, tc.expired)
		}
	}
	var unknown Token
	if unknown.IsExpired() || unknown.TTL() != 0 {
		t.Errorf("unknown expiry")
	}
	// Without an injected clock the wall clock is used.
	past := Token{ExpiresAt: time.Now().Add(-time.Second)}
	future := Token{ExpiresAt: time.Now().Add(time.Hour)}
	if !past.IsExpired() || future.IsExpired() || future.TTL() < 59*time.Minute {
		t.Errorf("wall clock")
	}
}

func TestActionCheckDecoding(t *testing.T) {
	srv := newRecServer(t, nil)
	c := newTestClient(t, srv.URL)
	f := func(v float64) *float64 { return &v }
	i := func(v int) *int { return &v }
	cases := []struct {
		body    string
		want    ActionCheckResult
		decided bool
	}{
		{`{"allowed":true,"check_id":"chk-1","confidence":0.98,"guard_tier":"fast","latency_ms":3,"reason":"read-only tool","elevation_required":false}`,
			ActionCheckResult{Allowed: true, CheckID: "chk-1", Confidence: f(0.98), GuardTier: "fast", LatencyMs: i(3), Reason: "read-only tool"}, true},
		{`{"allowed":false,"elevation_required":true,"approval_id":"ap-1","confidence":1}`,
			ActionCheckResult{ElevationRequired: true, ApprovalID: "ap-1", Confidence: f(1)}, true},
		{`{}`, ActionCheckResult{}, false},
		{``, ActionCheckResult{}, false},
		{`{"allowed":null,"confidence":null,"latency_ms":null}`, ActionCheckResult{}, false},
	}
	for _, tc := range cases {
		srv.setHandler(reply(200, tc.body))
		r, err := c.Actions.Check(ctxT(t), ActionCheckParams{AgentID: "a"})
		if err != nil {
			t.Fatalf("%s: %v", tc.body, err)
		}
		if r.Decided() != tc.decided {
			t.Errorf("%s: Decided %v", tc.body, r.Decided())
		}
		r.decided = false
		if !reflect.DeepEqual(*r, tc.want) {
			t.Errorf("%s:\n got  %+v\n want %+v", tc.body, *r, tc.want)
		}
	}
	// Only "allowed" is strict; wrong-typed other fields are tested in
	// TestActionCheckLenientFields.
	for _, body := range []string{`{"allowed":"true"}`, `{"allowed":1}`, `{"allowed":{}}`, `{"allowed":"false","latency_ms":3.5}`, `[true]`, `"allowed"`, `{"allowed":true`} {
		srv.setHandler(reply(200, body))
		_, err := c.Actions.Check(ctxT(t), ActionCheckParams{AgentID: "a"})
		wantDecode(t, err)
	}
}

func TestOrganizationDecoding(t *testing.T) {
	var o Organization
	if err := json.Unmarshal([]byte(`{"id":"o","name":"n","settings":{"a":1},"created_at":"2026-03-01T10:00:00Z"}`), &o); err != nil {
		t.Fatal(err)
	}
	if o.Tier != TierFree || o.ID != "o" || !o.CreatedAt.Equal(ts0) || o.Settings["a"] != float64(1) {
		t.Errorf("%+v", o)
	}
	if err := json.Unmarshal([]byte(`{"tier":"pro","created_at":7}`), &o); err != nil || o.Tier != TierPro || !o.CreatedAt.IsZero() || o.ID != "" {
		t.Errorf("%+v %v", o, err)
	}
	if err := json.Unmarshal([]byte(`{"tier":1}`), &o); err == nil {
		t.Errorf("wrong type accepted")
	}
}

func TestTokenStringHidesSecret(t *testing.T) {
	tok := Token{Token: "at_SUPERSECRET", TokenID: "tid", AgentID: "a1", Scopes: []string{"r"}, ExpiresAt: ts0}
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		for _, v := range []any{tok, &tok, []Token{tok}, map[string]*Token{"k": &tok}} {
			out := fmt.Sprintf(f, v)
			if strings.Contains(out, "SUPERSECRET") {
				t.Errorf("%s of %T reveals the token: %s", f, v, out)
			}
		}
	}
	if s := tok.String(); !strings.Contains(s, "at_[redacted]") || !strings.Contains(s, "tid") {
		t.Errorf("String() = %s", s)
	}
	if s := (Token{Token: "opaque"}).String(); strings.Contains(s, "opaque") {
		t.Errorf("String() = %s", s)
	}
}

// Enumerations decode into their named types; known values equal the
// constants and unknown ones are kept as received.
func TestEnumerationsPassThrough(t *testing.T) {
	var a Agent
	var s Session
	var ap ApprovalRequest
	for _, tc := range []struct {
		body string
		into any
	}{
		{`{"framework":"langchain"}`, &a},
		{`{"source":"a2a","mode":"elevated"}`, &s},
		{`{"status":"approved","action_effect":"destructive"}`, &ap},
	} {
		if err := json.Unmarshal([]byte(tc.body), tc.into); err != nil {
			t.Fatal(err)
		}
	}
	if a.Framework != FrameworkLangChain || s.Source != SessionSourceA2A || s.Mode != SessionModeElevated ||
		ap.Status != ApprovalApproved || ap.ActionEffect != EffectDestructive {
		t.Fatalf("known values: %v %+v %+v", a.Framework, s, ap)
	}
	var a2 Agent
	var s2 Session
	var ap2 ApprovalRequest
	_ = json.Unmarshal([]byte(`{"framework":"my-own"}`), &a2)
	_ = json.Unmarshal([]byte(`{"source":"grpc","mode":"sudo"}`), &s2)
	_ = json.Unmarshal([]byte(`{"status":"expired","action_effect":"weird"}`), &ap2)
	if a2.Framework != Framework("my-own") || s2.Source != SessionSource("grpc") || s2.Mode != SessionMode("sudo") ||
		ap2.Status != ApprovalStatus("expired") || ap2.ActionEffect != ActionEffect("weird") {
		t.Fatalf("unknown values lost: %v %+v %+v", a2.Framework, s2, ap2)
	}
	// The defaults are the typed constants too.
	var d Agent
	var dap ApprovalRequest
	_ = json.Unmarshal([]byte(`{}`), &d)
	_ = json.Unmarshal([]byte(`{}`), &dap)
	if d.Framework != FrameworkCustom || dap.Status != ApprovalPending {
		t.Fatalf("defaults %q %q", d.Framework, dap.Status)
	}
	// Telemetry writes its typed event type as the plain wire string, and an
	// unknown one as given.
	for _, et := range []EventType{EventToolEnd, "custom_event"} {
		b, err := json.Marshal(TelemetryEvent{EventType: et, ToolName: "t", Timestamp: ts0})
		if err != nil || !strings.HasPrefix(string(b), `{"event_type":"`+string(et)+`","tool_name":"t"`) {
			t.Fatalf("%s: %s %v", et, b, err)
		}
	}
}
