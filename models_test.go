package agenttrust

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
		assert.Equal(t, tc.ttl, tok.TTL(), "at +%v: TTL %v expired %v, want %v %v", tc.at, tok.TTL(), tok.IsExpired(), tc.ttl, tc.expired)
		assert.Equal(t, tc.expired, tok.IsExpired(), "at +%v: TTL %v expired %v, want %v %v", tc.at, tok.TTL(), tok.IsExpired(), tc.ttl, tc.expired)
	}
	var unknown Token
	assert.False(t, unknown.IsExpired(), "unknown expiry")
	assert.EqualValues(t, 0, unknown.TTL(), "unknown expiry")
	// Without an injected clock the wall clock is used.
	past := Token{ExpiresAt: time.Now().Add(-time.Second)}
	future := Token{ExpiresAt: time.Now().Add(time.Hour)}
	assert.True(t, past.IsExpired(), "wall clock")
	assert.False(t, future.IsExpired(), "wall clock")
	assert.GreaterOrEqual(t, future.TTL(), 59*time.Minute, "wall clock")
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
		require.NoError(t, err, "%s", tc.body)
		assert.Equal(t, tc.decided, r.Decided(), "%s: Decided %v", tc.body, r.Decided())
		r.decided = false
		assert.Equal(t, tc.want, *r, "%s:\n got  %+v\n want %+v", tc.body, *r, tc.want)
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
	require.NoError(t, json.Unmarshal([]byte(`{"id":"o","name":"n","settings":{"a":1},"created_at":"2026-03-01T10:00:00Z"}`), &o))
	assert.Equal(t, TierFree, o.Tier, "%+v", o)
	assert.Equal(t, "o", o.ID, "%+v", o)
	assert.True(t, o.CreatedAt.Equal(ts0), "%+v", o)
	assert.Equal(t, float64(1), o.Settings["a"], "%+v", o)
	err := json.Unmarshal([]byte(`{"tier":"pro","created_at":7}`), &o)
	require.NoError(t, err, "%+v", o)
	assert.Equal(t, TierPro, o.Tier, "%+v %v", o, err)
	assert.True(t, o.CreatedAt.IsZero(), "%+v %v", o, err)
	assert.Empty(t, o.ID, "%+v %v", o, err)
	assert.Error(t, json.Unmarshal([]byte(`{"tier":1}`), &o), "wrong type accepted")
}

func TestTokenStringHidesSecret(t *testing.T) {
	tok := Token{Token: "at_SUPERSECRET", TokenID: "tid", AgentID: "a1", Scopes: []string{"r"}, ExpiresAt: ts0}
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		for _, v := range []any{tok, &tok, []Token{tok}, map[string]*Token{"k": &tok}} {
			out := fmt.Sprintf(f, v)
			assert.NotContains(t, out, "SUPERSECRET", "%s of %T reveals the token: %s", f, v, out)
		}
	}
	s := tok.String()
	assert.Contains(t, s, "at_[redacted]", "String() = %s", s)
	assert.Contains(t, s, "tid", "String() = %s", s)
	s = (Token{Token: "opaque"}).String()
	assert.NotContains(t, s, "opaque", "String() = %s", s)
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
		require.NoError(t, json.Unmarshal([]byte(tc.body), tc.into))
	}
	require.Equal(t, FrameworkLangChain, a.Framework, "known values: %v %+v %+v", a.Framework, s, ap)
	require.Equal(t, SessionSourceA2A, s.Source, "known values: %v %+v %+v", a.Framework, s, ap)
	require.Equal(t, SessionModeElevated, s.Mode, "known values: %v %+v %+v", a.Framework, s, ap)
	require.Equal(t, ApprovalApproved, ap.Status, "known values: %v %+v %+v", a.Framework, s, ap)
	require.Equal(t, EffectDestructive, ap.ActionEffect, "known values: %v %+v %+v", a.Framework, s, ap)
	var a2 Agent
	var s2 Session
	var ap2 ApprovalRequest
	_ = json.Unmarshal([]byte(`{"framework":"my-own"}`), &a2)
	_ = json.Unmarshal([]byte(`{"source":"grpc","mode":"sudo"}`), &s2)
	_ = json.Unmarshal([]byte(`{"status":"expired","action_effect":"weird"}`), &ap2)
	require.Equal(t, Framework("my-own"), a2.Framework, "unknown values lost: %v %+v %+v", a2.Framework, s2, ap2)
	require.Equal(t, SessionSource("grpc"), s2.Source, "unknown values lost: %v %+v %+v", a2.Framework, s2, ap2)
	require.Equal(t, SessionMode("sudo"), s2.Mode, "unknown values lost: %v %+v %+v", a2.Framework, s2, ap2)
	require.Equal(t, ApprovalStatus("expired"), ap2.Status, "unknown values lost: %v %+v %+v", a2.Framework, s2, ap2)
	require.Equal(t, ActionEffect("weird"), ap2.ActionEffect, "unknown values lost: %v %+v %+v", a2.Framework, s2, ap2)
	// The defaults are the typed constants too.
	var d Agent
	var dap ApprovalRequest
	_ = json.Unmarshal([]byte(`{}`), &d)
	_ = json.Unmarshal([]byte(`{}`), &dap)
	require.Equal(t, FrameworkCustom, d.Framework, "defaults %q %q", d.Framework, dap.Status)
	require.Equal(t, ApprovalPending, dap.Status, "defaults %q %q", d.Framework, dap.Status)
	// Telemetry writes its typed event type as the plain wire string, and an
	// unknown one as given.
	for _, et := range []EventType{EventToolEnd, "custom_event"} {
		b, err := json.Marshal(TelemetryEvent{EventType: et, ToolName: "t", Timestamp: ts0})
		require.NoError(t, err, "%s: %s", et, b)
		require.True(t, strings.HasPrefix(string(b), `{"event_type":"`+string(et)+`","tool_name":"t"`), "%s: %s %v", et, b, err)
	}
}

// FuzzDecodeModels checks that no reply makes the model decoders panic, and
// that every failure is one of the SDK's typed errors. `go test` runs the
// seed corpus in testdata/fuzz/FuzzDecodeModels.
func FuzzDecodeModels(f *testing.F) {
	f.Add([]byte(`{"id": "x", "created_at": "2026-03-01T10:00:00Z"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		resp := &response{status: 200, body: data}
		check := func(err error) {
			if err == nil {
				return
			}
			var de *DecodeError
			require.ErrorAs(t, err, &de, "error %v (%T) is not a *DecodeError", err, err)
			require.ErrorIs(t, err, ErrDecode, "error %v (%T) is not a *DecodeError", err, err)
		}
		check(decodeObject(resp, new(MCPServer)))
		check(decodeObject(resp, new(SIEMDestination)))
		check(decodeObject(resp, new(SIEMDeliveryRecord)))
		check(decodeObject(resp, new(FederationIntrospectionResult)))
		check(decodeObject(resp, new(IDTokenResponse)))
		check(decodeObject(resp, new(Session)))
		check(decodeWrapped(resp, "delegation", new(Delegation)))
		check(decodeWrapped(resp, "provider", new(FederationProvider)))
		_, err := decodeList[MCPServer](resp, "servers", "")
		check(err)
		_, err = decodeList[Delegation](resp, "delegations", "")
		check(err)
		_, err = decodeList[FederationProvider](resp, "providers", "provider")
		check(err)
		_, err = decodeList[SIEMDestination](resp, "destinations", "")
		check(err)
		_, err = decodeList[SIEMDeliveryRecord](resp, "logs", "")
		check(err)
		var d SIEMDestination
		if decodeObject(resp, &d) == nil {
			_ = d.String()
		}
	})
}
