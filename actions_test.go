package agenttrust

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/agenttrustid/agenttrust-go/internal/allocs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckSummaryTruncatedByRunes(t *testing.T) {
	srv := newRecServer(t, reply(200, `{"allowed":true}`))
	c := newTestClient(t, srv.URL)
	for _, r := range []string{"é", "日", "😀", "a"} {
		srv.clear()
		in := strings.Repeat(r, 300)
		_, err := c.Actions.Check(ctxT(t), ActionCheckParams{AgentID: "a1", ToolInputSummary: in})
		require.NoError(t, err)
		body := srv.only(t).Body
		require.True(t, utf8.Valid(body), "body is not valid UTF-8")
		got, ok := decodeMap(t, body)["action_input_summary"].(string)
		require.True(t, ok, "action_input_summary missing: %s", body)
		assert.Equal(t, 200, utf8.RuneCountInString(got), "%q x300 arrived as %d runes (%d bytes)", r, utf8.RuneCountInString(got), len(got))
		assert.Equal(t, strings.Repeat(r, 200), got, "%q x300 arrived as %d runes (%d bytes)", r, utf8.RuneCountInString(got), len(got))
		assert.True(t, utf8.ValidString(got), "%q x300 arrived as %d runes (%d bytes)", r, utf8.RuneCountInString(got), len(got))
	}
	// Exactly 200 runes pass untouched.
	srv.clear()
	in := strings.Repeat("日", 200)
	c.Actions.Check(ctxT(t), ActionCheckParams{AgentID: "a1", ToolInputSummary: in})
	got := decodeMap(t, srv.only(t).Body)["action_input_summary"]
	assert.Equal(t, in, got, "200 runes changed")
}

func TestCheckDenialIsNotAnError(t *testing.T) {
	srv := newRecServer(t, reply(200, `{"allowed":false,"reason":"policy","elevation_required":true,"approval_id":"ap-9"}`))
	c := newTestClient(t, srv.URL)
	r, err := c.Actions.Check(ctxT(t), ActionCheckParams{AgentID: "a1", ToolName: "rm"})
	require.NoError(t, err, "%+v", r)
	assert.False(t, r.Allowed, "%+v %v", r, err)
	assert.True(t, r.ElevationRequired, "%+v %v", r, err)
	assert.Equal(t, "ap-9", r.ApprovalID, "%+v %v", r, err)
	assert.Equal(t, "policy", r.Reason, "%+v %v", r, err)
	srv.setHandler(reply(403, `{"error":"forbidden"}`))
	_, err = c.Actions.Check(ctxT(t), ActionCheckParams{AgentID: "a1"})
	onlySentinel(t, err, ErrAuthorization)
}

// TestActionCheckLenientFields: the decision is "allowed" alone. A field of
// the wrong type is zeroed and logged at warning level, and never turns an
// explicit deny into an allow (or an allow into an error).
func TestActionCheckLenientFields(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	i := func(v int) *int { return &v }
	cases := []struct {
		body     string
		want     ActionCheckResult
		mistyped []string
	}{
		{`{"allowed":false,"check_id":"c1","reason":"no","latency_ms":12.5}`,
			ActionCheckResult{CheckID: "c1", Reason: "no"}, []string{"latency_ms"}},
		{`{"allowed":false,"confidence":"high","guard_tier":"llm"}`,
			ActionCheckResult{GuardTier: "llm"}, []string{"confidence"}},
		{`{"allowed":false,"elevation_required":"yes","approval_id":"ap-1"}`,
			ActionCheckResult{ApprovalID: "ap-1"}, []string{"elevation_required"}},
		{`{"allowed":true,"latency_ms":12.5,"confidence":0.5}`,
			ActionCheckResult{Allowed: true, Confidence: f(0.5)}, []string{"latency_ms"}},
		{`{"latency_ms":7,"check_id":42,"reason":["x"],"allowed":true,"guard_tier":{},"approval_id":false,"elevation_required":1}`,
			ActionCheckResult{Allowed: true, LatencyMs: i(7)}, []string{"check_id", "guard_tier", "reason", "elevation_required", "approval_id"}},
		{`{"allowed":false,"latency_ms":99999999999999999999,"confidence":null}`,
			ActionCheckResult{}, []string{"latency_ms"}},
	}
	for _, tc := range cases {
		srv := newRecServer(t, replyH(200, tc.body, map[string]string{"X-Request-Id": "req-7"}))
		var logs strings.Builder
		c := newTestClient(t, srv.URL, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		r, err := c.Actions.Check(ctxT(t), ActionCheckParams{AgentID: "a"})
		require.NoError(t, err, "%s", tc.body)
		assert.True(t, r.Decided(), "%s: not decided", tc.body)
		r.decided = false
		assert.Equal(t, tc.want, *r, "%s:\n got  %+v\n want %+v", tc.body, *r, tc.want)
		out := logs.String()
		n := strings.Count(out, "level=WARN")
		assert.Equal(t, len(tc.mistyped), n, "%s: %d warnings, want %d:\n%s", tc.body, n, len(tc.mistyped), out)
		for _, name := range tc.mistyped {
			assert.Contains(t, out, "field="+name+" ", "%s: no warning for %s:\n%s", tc.body, name, out)
			assert.Contains(t, out, "request_id=req-7", "%s: no warning for %s:\n%s", tc.body, name, out)
		}
		// json.Unmarshal into the model decides the same way, silently.
		var m ActionCheckResult
		err = json.Unmarshal([]byte(tc.body), &m)
		require.NoError(t, err, "%s: json.Unmarshal: %v, decided %v", tc.body, err, m.Decided())
		assert.True(t, m.Decided(), "%s: json.Unmarshal: %v, decided %v", tc.body, err, m.Decided())
		m.decided = false
		assert.Equal(t, tc.want, m, "%s: json.Unmarshal:\n got  %+v\n want %+v", tc.body, m, tc.want)
	}
	// A well-typed reply logs nothing.
	srv := newRecServer(t, reply(200, checkReply))
	var logs strings.Builder
	c := newTestClient(t, srv.URL, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	r, err := c.Actions.Check(ctxT(t), ActionCheckParams{AgentID: "a"})
	require.NoError(t, err, "%+v %v logs %q", r, err, logs.String())
	require.True(t, r.Allowed, "%+v %v logs %q", r, err, logs.String())
	require.Equal(t, 0, logs.Len(), "%+v %v logs %q", r, err, logs.String())
	// The strict decision rejects a non-boolean "allowed" through
	// json.Unmarshal as well.
	var m ActionCheckResult
	assert.Error(t, json.Unmarshal([]byte(`{"allowed":"false"}`), &m), `json.Unmarshal accepted "allowed":"false"`)
}

// FuzzActionCheckDecode checks the decision against an independent reading
// of "allowed" (the raw value under encoding/json's key matching): a reply
// decodes as allowed only when that value is true; when it is true or false
// the decode never fails (no other field can fail it) and gives exactly that
// decision.
func FuzzActionCheckDecode(f *testing.F) {
	for _, s := range []string{checkReply, `{"allowed":false,"latency_ms":12.5}`, `{"allowed":false,"confidence":"high"}`,
		`{"allowed":false,"elevation_required":"yes"}`, `{"allowed":true,"latency_ms":1e400}`, `[]`, `{}`, `null`,
		`{"Allowed":true,"allowed":false}`, `{"allowed":true,"check_id":{"a":[1,2]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		res, _, err := decodeCheckResult(b)
		var o struct {
			Allowed json.RawMessage `json:"allowed"`
		}
		oerr := json.Unmarshal(b, &o)
		raw := string(o.Allowed)
		if err == nil && res.Allowed {
			require.NoError(t, oerr, "%q decoded as allowed; allowed is %q", b, raw)
			require.Equal(t, "true", raw, "%q decoded as allowed", b)
		}
		if oerr == nil && (raw == "true" || raw == "false") {
			require.NoError(t, err, "%q: decode failed despite a boolean allowed", b)
			require.Equal(t, (raw == "true"), res.Allowed, "%q: Allowed %v Decided %v, want %s", b, res.Allowed, res.Decided(), raw)
			require.True(t, res.Decided(), "%q: Allowed %v Decided %v, want %s", b, res.Allowed, res.Decided(), raw)
		}
	})
}

// FuzzCheckBodyEncoding: the hand-written check body is byte for byte what
// encoding/json (without HTML escaping) writes for the same struct.
func FuzzCheckBodyEncoding(f *testing.F) {
	f.Add("agent-1", "sess-1", "read_file", "path=/etc/hosts", "")
	f.Add("a\"b\\c", "\x00\x01\x1f\x7f", "\b\f\n\r\t", "<script>&amp;</script>", "destructive")
	f.Add("\xff\xfe", "\u2028\u2029", "日本語", "é\xc3", "read")
	f.Add("", "", "", "", "x")
	f.Fuzz(func(t *testing.T, agent, session, name, summary, effect string) {
		b := actionCheckBody{AgentID: agent, SessionID: session, ActionName: name, ActionSource: "api",
			InputSummary: summary, ActionEffect: ActionEffect(effect)}
		want, err := encodeJSON(&b)
		require.NoError(t, err)
		got := b.appendJSON(nil)
		require.Equal(t, string(want), string(got), "appendJSON\n got  %q\n want %q", got, want)
	})
}

// TestCheckBodyOneAllocation: encoding a check body allocates only its
// buffer.
func TestCheckBodyOneAllocation(t *testing.T) {
	b := actionCheckBody{AgentID: "agent-123", SessionID: "sess-1", ActionName: "read_file", ActionSource: "api",
		InputSummary: strings.Repeat("é", 200), ActionEffect: EffectRead}
	n := allocs.Least(100, nil, func() { b.appendJSON(nil) })
	assert.Equal(t, 1.0, n, "appendJSON allocates %v times, want 1", n)
}
