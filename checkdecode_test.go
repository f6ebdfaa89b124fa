package agenttrust

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkReplySeeds are replies the fast decoder takes and replies it must
// leave to encoding/json.
var checkReplySeeds = []string{
	checkReply,
	`{}`, ` { } `, `{"allowed":false}`, `{"allowed":null,"confidence":null,"latency_ms":null,"reason":null}`,
	`{"allowed":true,"extra":"x\"y\\u00e9\n","n":-1.5e-3,"t":true,"f":false,"z":null,"":0}`,
	`{"allowed":true,"reason":"déjà vu ⚠","check_id":"c"}`,
	`{"allowed":true,"latency_ms":-0,"confidence":1E+2}`,
	`{"allowed":true,"latency_ms":9223372036854775807}`, `{"allowed":true,"latency_ms":-9223372036854775808}`,
	`{"allowed":true,"latency_ms":9223372036854775808}`, `{"allowed":true,"latency_ms":1.0}`, `{"allowed":true,"latency_ms":1e3}`,
	`{"allowed":true,"confidence":1e400}`, `{"allowed":true,"confidence":"high"}`, `{"allowed":"true"}`,
	`{"allowed":true,"allowed":false}`, `{"allowed":true,"ALLOWED":false}`, `{"allowed":true,"Reason":"r"}`,
	"{\"allowed\":true,\"chec\u212a_id\":\"kelvin\"}", `{"allowed":true,"check_id":"a\u0000"}`, "{\"allowed\":true,\"reason\":\"\xff\"}",
	`{"allowed":true,"nested":{"a":[1]}}`, `{"allowed":true,"list":[]}`, `{"allowed":true,}`, `{"allowed":true} x`,
	`{"allowed":true,"n":01}`, `{"allowed":true,"n":-}`, `{"allowed":true,"n":1.}`, `{"allowed":true,"s":"\x"}`,
	`{"allowed":true,"s":"\u12"}`, `{"allowed":tru}`, `[true]`, `"allowed"`, `nul`, `{"allowed":true,"reason":"a","reason":null}`,
	`{"reason":5,"reason":"a","allowed":false}`, `{"elevation_required":"yes","allowed":false}`, "\t{\"allowed\" :\r\ntrue}\n",
}

// FuzzCheckDecodeFast: whatever the reply, the reflection-free decoder and
// encoding/json give the same result, mistyped fields and error or not.
func FuzzCheckDecodeFast(f *testing.F) {
	for _, s := range checkReplySeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		compareCheckDecoders(t, b)
	})
}

func compareCheckDecoders(t *testing.T, b []byte) {
	t.Helper()
	r1, m1, e1 := decodeCheck(b, true)
	r2, m2, e2 := decodeCheck(b, false)
	require.Equal(t, (e2 == nil), (e1 == nil), "%q:\n fast %+v %v %v\n json %+v %v %v", b, r1, m1, e1, r2, m2, e2)
	require.Equal(t, r2, r1, "%q:\n fast %+v %v %v\n json %+v %v %v", b, r1, m1, e1, r2, m2, e2)
	require.Equal(t, m2, m1, "%q:\n fast %+v %v %v\n json %+v %v %v", b, r1, m1, e1, r2, m2, e2)
}

func TestCheckDecodeFastMatchesJSON(t *testing.T) {
	for _, s := range checkReplySeeds {
		compareCheckDecoders(t, []byte(s))
	}
	// The common replies take the fast path.
	for _, s := range []string{checkReply, `{"allowed":false,"reason":"déjà vu","guard_tier":"llm","confidence":0.5,"latency_ms":12,"elevation_required":true,"approval_id":"ap","policy":"p-1","score":0.1,"cached":false}`} {
		w := &checkReplyWire{}
		w.plainCheckResult = (*plainCheckResult)(&w.res)
		assert.True(t, w.decodeFast([]byte(s)), "fast path refused %s", s)
	}
	// And refuse what they must leave to encoding/json.
	for _, s := range []string{`{"allowed":true,"Allowed":false}`, "{\"chec\u212a_id\":\"x\"}", `{"a":{}}`, `{"latency_ms":1.5}`, `{"allowed":true,"allowed":true}`} {
		w := &checkReplyWire{}
		w.plainCheckResult = (*plainCheckResult)(&w.res)
		assert.False(t, w.decodeFast([]byte(s)), "fast path took %s", s)
	}
}

// TestCheckDecodeFastKeys: every known key is decoded into its own field
// (null leaves it alone), and a repeat of any of them is left to
// encoding/json, whose last-one-wins result the fast decoder cannot give.
func TestCheckDecodeFastKeys(t *testing.T) {
	values := map[string]string{
		"allowed": "true", "elevation_required": "true", "check_id": `"c"`, "guard_tier": `"fast"`,
		"reason": `"r"`, "approval_id": `"ap"`, "confidence": "0.25", "latency_ms": "7",
	}
	conf, lat := 0.25, 7
	want := ActionCheckResult{Allowed: true, decided: true, ElevationRequired: true, CheckID: "c", GuardTier: "fast",
		Reason: "r", ApprovalID: "ap", Confidence: &conf, LatencyMs: &lat}
	var all []string
	for i, k := range checkKeys {
		assert.Equal(t, i, checkKeyIndex([]byte(k)), "checkKeyIndex(%s)", k)
		assert.Equal(t, -1, checkKeyIndex([]byte(strings.ToUpper(k))), "checkKeyIndex(%s)", strings.ToUpper(k))
		v, ok := values[k]
		require.True(t, ok, "no test value for key %s", k)
		all = append(all, `"`+k+`":`+v)

		one := []byte(`{"` + k + `":` + v + `,"` + k + `":null}`)
		w := &checkReplyWire{}
		w.plainCheckResult = (*plainCheckResult)(&w.res)
		assert.False(t, w.decodeFast(one), "fast path took the repeated key in %s", one)
		compareCheckDecoders(t, one)

		null := []byte(`{"` + k + `":null}`)
		w = &checkReplyWire{}
		w.plainCheckResult = (*plainCheckResult)(&w.res)
		require.True(t, w.decodeFast(null), "fast path refused %s", null)
		assert.Equal(t, ActionCheckResult{}, w.res, "%s", null)
		assert.Equal(t, boolAbsent, w.Allowed, "%s", null)
	}
	b := []byte("{" + strings.Join(all, ",") + "}")
	res, mistyped, err := decodeCheck(b, true)
	require.NoError(t, err)
	assert.Empty(t, mistyped)
	assert.Equal(t, &want, res)
}

func TestParseInt(t *testing.T) {
	for in, want := range map[string]int{"0": 0, "-0": 0, "42": 42, "-42": -42, "9223372036854775807": 1<<63 - 1, "-9223372036854775808": -1 << 63} {
		got, ok := parseInt([]byte(in))
		assert.True(t, ok, "parseInt(%s) = %d, %v", in, got, ok)
		assert.Equal(t, want, got, "parseInt(%s) = %d, %v", in, got, ok)
	}
	for _, in := range []string{"9223372036854775808", "-9223372036854775809", "99999999999999999999", "1.5", "1e3", strings.Repeat("9", 40)} {
		_, ok := parseInt([]byte(in))
		assert.False(t, ok, "parseInt(%s) accepted", in)
	}
}

// BenchmarkCheckDecode is the check reply's decode as Actions.Check runs it;
// BenchmarkCheckDecodeJSON the same through encoding/json alone.
func BenchmarkCheckDecode(b *testing.B)     { benchCheckDecode(b, true) }
func BenchmarkCheckDecodeJSON(b *testing.B) { benchCheckDecode(b, false) }

func benchCheckDecode(b *testing.B, fast bool) {
	body := []byte(checkReply)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r, _, err := decodeCheck(body, fast)
		require.NoError(b, err, "%v", r)
		require.True(b, r.Allowed, "%v %v", r, err)
	}
}
