package agenttrust

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseTimestamp(t *testing.T) {
	utc := func(h, m, s, ns int) time.Time { return time.Date(2026, 3, 1, h, m, s, ns, time.UTC) }
	cases := []struct {
		in   string
		want time.Time // zero: rejected
	}{
		{"2026-03-01T10:00:00Z", utc(10, 0, 0, 0)},
		{"2026-03-01T10:00:00z", utc(10, 0, 0, 0)},
		{"2026-03-01t10:00:00Z", utc(10, 0, 0, 0)},
		{"2026-03-01 10:00:00Z", utc(10, 0, 0, 0)},
		{"2026-03-01T10:00:00", utc(10, 0, 0, 0)},
		{"2026-03-01T10:00:00.5", utc(10, 0, 0, 500000000)},
		{"2026-03-01T10:00:00.1Z", utc(10, 0, 0, 100000000)},
		{"2026-03-01T10:00:00.123Z", utc(10, 0, 0, 123000000)},
		{"2026-03-01T10:00:00.123456+00:00", utc(10, 0, 0, 123456000)},
		{"2026-03-01T10:00:00.123456789Z", utc(10, 0, 0, 123456789)},
		{"2026-03-01T10:00:00.1234567891234Z", utc(10, 0, 0, 123456789)},
		{"2026-03-01T12:00:00+02:00", utc(10, 0, 0, 0)},
		{"2026-03-01T04:30:00.25-05:30", utc(10, 0, 0, 250000000)},
		{"2026-03-01 10:00:00.000001", utc(10, 0, 0, 1000)},
		{"", time.Time{}},
		{"2026-03-01", time.Time{}},
		{"2026-03-01T10:00", time.Time{}},
		{"2026-03-01X10:00:00Z", time.Time{}},
		{"2026-03-01T10:00:00.Z", time.Time{}},
		{"2026-03-01T10:00:00+0200", time.Time{}},
		{"2026-03-01T10:00:00+02", time.Time{}},
		{"2026-03-01T10:00:00ZZ", time.Time{}},
		{"2026-03-01T10:00:00 UTC", time.Time{}},
		{"2026-13-01T10:00:00Z", time.Time{}},
		{"2026-02-30T10:00:00Z", time.Time{}},
		{"2026-03-01T25:00:00Z", time.Time{}},
		{"garbage-garbage-garbage", time.Time{}},
		{"2026-03-01T10:00:00.1a", time.Time{}},
		{"１０２６-03-01T10:00:00Z", time.Time{}},
	}
	for _, tc := range cases {
		got := parseTimestamp(tc.in)
		assert.True(t, got.Equal(tc.want), "parseTimestamp(%q) = %v, want %v", tc.in, got, tc.want)
		assert.Equal(t, tc.want.IsZero(), got.IsZero(), "parseTimestamp(%q) = %v, want %v", tc.in, got, tc.want)
		if !got.IsZero() {
			if _, off := got.Zone(); off != 0 {
				assert.NotSame(t, time.UTC, got.Location(), "%q: zone confusion", tc.in)
			}
		}
	}
}

func TestLenientTime(t *testing.T) {
	for raw, wantZero := range map[string]bool{
		`"2026-03-01T10:00:00Z"`: false, `null`: true, `""`: true, `5`: true, `true`: true,
		`{"a":1}`: true, `["2026-03-01T10:00:00Z"]`: true, `"bad"`: true, `"\u0032026-03-01T10:00:00Z"`: false,
	} {
		var v struct {
			T lenientTime `json:"t"`
		}
		v.T.Time = time.Now() // must be reset
		assert.NoError(t, json.Unmarshal([]byte(`{"t":`+raw+`}`), &v), "%s", raw)
		if raw != `null` {
			assert.Equal(t, wantZero, v.T.IsZero(), "%s: got %v", raw, v.T.Time)
		}
	}
}

func decodeResp(body string) *response {
	return &response{status: 200, body: []byte(body), requestID: "rid"}
}

func TestDecodeList(t *testing.T) {
	type el struct {
		ID string `json:"id"`
	}
	ok := map[string]int{
		`[{"id":"a"},{"id":"b"}]`:           2,
		` [] `:                              0,
		`{"agents":[{"id":"a"}],"total":1}`: 1,
		`{"agents":null}`:                   0,
		``:                                  0,
		`null`:                              0,
		`{"agents":[{"agent":{"id":"w"}}]}`: 1,
	}
	for body, n := range ok {
		got, err := decodeList[el](decodeResp(body), "agents", "")
		require.NoError(t, err, "%q: %v", body, got)
		require.Len(t, got, n, "%q: %v %v", body, got, err)
		assert.NotNil(t, got, "%q: %v %v", body, got, err)
	}
	for _, body := range []string{`{"unexpected":"shape"}`, `{"agents":{"id":"a"}}`, `{"agents":"x"}`, `[1,2]`,
		`["a"]`, `[null]`, `"x"`, `5`, `{"agents":[`, `[{"id":5}]`, `tru`} {
		_, err := decodeList[el](decodeResp(body), "agents", "")
		wantDecode(t, err)
	}
	// elemKey unwraps each element.
	got, err := decodeList[el](decodeResp(`[{"provider":{"id":"p1"}},{"id":"p2"}]`), "providers", "provider")
	require.NoError(t, err, "elemKey: %v", got)
	assert.Equal(t, "p1", got[0].ID, "elemKey: %v %v", got, err)
	assert.Equal(t, "p2", got[1].ID, "elemKey: %v %v", got, err)
}

func TestDecodeWrapped(t *testing.T) {
	type m struct {
		ID string `json:"id"`
	}
	for body, want := range map[string]string{
		`{"agent":{"id":"in"},"id":"out"}`: "in",
		`{"agent":null,"id":"out"}`:        "out",
		`{"agent":"x","id":"out"}`:         "out",
		`{"id":"flat"}`:                    "flat",
		``:                                 "",
		`null`:                             "",
	} {
		var v m
		err := decodeWrapped(decodeResp(body), "agent", &v)
		require.NoError(t, err, "%q: %q", body, v.ID)
		assert.Equal(t, want, v.ID, "%q: %q %v", body, v.ID, err)
	}
	for _, body := range []string{`[]`, `"x"`, `{"agent":{"id":5}}`, `{`} {
		var v m
		err := decodeWrapped(decodeResp(body), "agent", &v)
		wantDecode(t, err)
	}
}

func TestDecodeRawObjectAndObject(t *testing.T) {
	for _, body := range []string{``, `null`, "  \n"} {
		m, err := decodeRawObject(decodeResp(body))
		require.NoError(t, err, "%q: %v", body, m)
		require.NotNil(t, m, "%q: %v %v", body, m, err)
		assert.Empty(t, m, "%q: %v %v", body, m, err)
	}
	for _, body := range []string{`[]`, `1`, `"s"`, `{`, `true`} {
		_, err := decodeRawObject(decodeResp(body))
		wantDecode(t, err)
	}
	var s Session
	err := decodeObject(decodeResp(``), &s)
	require.NoError(t, err, "empty body")
	assert.Empty(t, s.SessionID, "empty body: %v", err)
	err = decodeObject(decodeResp(`[]`), &s)
	wantDecode(t, err)
}

// TestModelTimestampsLenient decodes every model that has timestamps with
// each of its time.Time fields set to a good, a malformed, a non-string and
// a null value: the good one parses, the others give the zero time, and
// none fails the decode.
func TestModelTimestampsLenient(t *testing.T) {
	models := []any{
		&Agent{}, &Token{}, &IntrospectionResult{}, &Session{}, &ApprovalRequest{}, &Organization{},
		&A2ATask{}, &Delegation{}, &FederationProvider{}, &FederationIntrospectionResult{},
		&IDTokenResponse{}, &MCPServer{}, &SIEMDestination{}, &SIEMDeliveryRecord{},
	}
	want := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for _, m := range models {
		typ := reflect.TypeOf(m).Elem()
		var keys []string
		for i := 0; i < typ.NumField(); i++ {
			if f := typ.Field(i); f.Type == timeType {
				keys = append(keys, strings.Split(f.Tag.Get("json"), ",")[0])
			}
		}
		assert.NotEmpty(t, keys, "%s has no time.Time field", typ)
		for _, raw := range []string{`"2026-03-01 10:00:00"`, `"garbage"`, `5`, `{"a":1}`, `""`} {
			obj := map[string]json.RawMessage{}
			for _, k := range keys {
				obj[k] = json.RawMessage(raw)
			}
			b, _ := json.Marshal(obj)
			v := reflect.New(typ)
			if err := json.Unmarshal(b, v.Interface()); !assert.NoError(t, err, "%s %s", typ, raw) {
				continue
			}
			for i := 0; i < typ.NumField(); i++ {
				f := typ.Field(i)
				if f.Type != timeType || (typ == reflect.TypeOf(Token{}) && f.Name == "IssuedAt" && raw == `""`) {
					continue // an empty issued_at means "now"
				}
				got := v.Elem().Field(i).Interface().(time.Time)
				ok := raw[0] == '"' && len(raw) > 12
				assert.Equal(t, ok, got.Equal(want), "%s.%s from %s = %v", typ, f.Name, raw, got)
				if !ok {
					assert.True(t, got.IsZero(), "%s.%s from %s = %v", typ, f.Name, raw, got)
				}
			}
		}
	}
}

// lenientProbe is a model as unmarshalModel expects one: a default set
// before decoding and an unexported field that must survive it.
type lenientProbe struct {
	Name    string    `json:"name"`
	Kind    string    `json:"kind"`
	When    time.Time `json:"when"`
	Skipped time.Time `json:"-"`
	Count   int       `json:"count"`
	private int
}

func (p *lenientProbe) UnmarshalJSON(b []byte) error {
	*p = lenientProbe{Kind: "default", private: p.private}
	return unmarshalModel(b, p)
}

func TestUnmarshalModel(t *testing.T) {
	keep := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	p := lenientProbe{private: 7, Skipped: keep}
	require.NoError(t, json.Unmarshal([]byte(`{"name":"n","when":"2026-03-01T10:00:00+02:00","Skipped":"x"}`), &p))
	require.Equal(t, "n", p.Name, "got %+v", p)
	require.Equal(t, "default", p.Kind, "got %+v", p)
	require.Equal(t, 7, p.private, "got %+v", p)
	require.True(t, p.Skipped.IsZero(), "got %+v", p)
	require.True(t, p.When.Equal(time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)), "got %+v", p)
	// A wrong type elsewhere is still an error, and what was decoded stays.
	err := json.Unmarshal([]byte(`{"name":"m","count":"x","when":"bad","kind":"k"}`), &p)
	var te *json.UnmarshalTypeError
	require.ErrorAs(t, err, &te, "err %v, got %+v", err, p)
	require.Equal(t, "m", p.Name, "err %v, got %+v", err, p)
	require.Equal(t, "k", p.Kind, "err %v, got %+v", err, p)
	require.True(t, p.When.IsZero(), "err %v, got %+v", err, p)
	require.Error(t, json.Unmarshal([]byte(`[1]`), &p), "an array decoded into a model")
	// One plan per type, built once.
	first, again := lenientPlanOf(reflect.TypeOf(p)), lenientPlanOf(reflect.TypeOf(p))
	require.Same(t, first, again, "plan rebuilt")
}

func TestUnmarshalModelRejectsEmbedding(t *testing.T) {
	type embeds struct{ lenientProbe }
	defer func() {
		require.NotNil(t, recover(), "no panic for an embedded field")
	}()
	_ = unmarshalModel([]byte(`{}`), &embeds{})
}

// emptyObjects returns "[{},{},...]" of n elements.
func emptyObjects(n int) []byte {
	b := make([]byte, 0, 3*n+1)
	b = append(b, '[')
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{', '}')
	}
	return append(b, ']')
}

// A list reply of 10 MiB of empty objects once built 3.5 million values,
// 1.4 GiB of heap. The element count is now bounded, and the memory a list
// reply can cost is a small multiple of the body cap: measured on a real
// loopback server, transport included, in both reply shapes.
func TestListReplyMemoryBounded(t *testing.T) {
	const bodyCap = 10 << 20
	arr := emptyObjects((bodyCap - 64) / 3)
	for name, body := range map[string][]byte{
		"bare":    arr,
		"wrapped": append(append([]byte(`{"total":1,"agents":`), arr...), '}'),
	} {
		require.LessOrEqual(t, len(body), bodyCap, "%s: body of %d bytes is over the cap", name, len(body))
		srv := newRecServer(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body) })
		c := newTestClient(t, srv.URL)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		got, err := c.Agents.List(ctxT(t), AgentListParams{})
		runtime.ReadMemStats(&after)
		var de *DecodeError
		require.ErrorAs(t, err, &de, "%s: %d agents, err %v; want a decode error naming MaxListItems", name, len(got), err)
		require.Contains(t, de.Message, "MaxListItems", "%s: %d agents, err %v; want a decode error naming MaxListItems", name, len(got), err)
		require.Nil(t, got, "%s: %d agents, err %v; want a decode error naming MaxListItems", name, len(got), err)
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s: %d bytes of body, %.1f MiB allocated (%.1fx the body cap)", name, len(body), float64(alloc)/(1<<20), float64(alloc)/bodyCap)
		assert.LessOrEqual(t, alloc, uint64(20*bodyCap), "%s: %d MiB allocated for a %d MiB body", name, alloc>>20, len(body)>>20)
	}
}

// Up to MaxListItems elements decode; one more is a decode error, in both
// reply shapes.
func TestListItemsBound(t *testing.T) {
	type el struct {
		ID string `json:"id"`
	}
	for _, n := range []int{MaxListItems, MaxListItems + 1} {
		arr := emptyObjects(n)
		for _, body := range [][]byte{arr, append(append([]byte(`{"agents":`), arr...), '}')} {
			got, err := decodeList[el](&response{status: 200, body: body}, "agents", "")
			if n <= MaxListItems {
				assert.NoError(t, err, "%d elements", n)
				assert.Len(t, got, n, "%d elements: %d decoded", n, len(got))
			}
			if n > MaxListItems {
				wantDecode(t, err)
			}
		}
	}
}

// The streaming decoder keeps the reply rules: the last of duplicate
// wrapper keys wins, nothing may follow the value, and every element is
// checked.
func TestDecodeListStreamingRules(t *testing.T) {
	type el struct {
		ID string `json:"id"`
	}
	ok := map[string][]string{
		`{"agents":[{"id":"a"}],"agents":[{"id":"b"}]}`:        {"b"},
		`{"agents":[{"id":"a"}],"agents":null}`:                {},
		`{"x":{"agents":[{"id":"no"}]},"agents":[{"id":"a"}]}`: {"a"},
		`{"agents":[{"id":"a"}],"x":[1,{"y":null}],"z":"s"}`:   {"a"},
		"\n[ {\"id\" : \"a\"} ,\t{\"id\":\"b\"} ]\n":           {"a", "b"},
	}
	for body, want := range ok {
		got, err := decodeList[el](decodeResp(body), "agents", "")
		if !assert.NoError(t, err, "%q", body) || !assert.Len(t, got, len(want), "%q: %v", body, got) ||
			!assert.NotNil(t, got, "%q", body) {
			continue
		}
		for i := range want {
			assert.Equal(t, want[i], got[i].ID, "%q: %v", body, got)
		}
	}
	for _, body := range []string{`[{"id":"a"}] x`, `[{"id":"a"}]]`, `{"agents":[]}}`, `{"agents":[]} {}`,
		`{"agents":[{}],"x":tru}`, `{"agents":[{},]}`, `[{},]`, `[{}`, `{"agents":[{}]`, `{"agents":true}`,
		`{"agents":{}}`, `{"agents":[{}, 1]}`, `[{"id":"a"}{"id":"b"}]`} {
		_, err := decodeList[el](decodeResp(body), "agents", "")
		wantDecode(t, err)
	}
}

// decodeListWhole is the list decoder before streaming, kept as the
// reference of FuzzDecodeListMatchesWhole and the baseline of
// BenchmarkDecodeList: it unmarshalled the whole array into raw elements
// first.
func decodeListWhole[T any](resp *response, key, elemKey string) ([]T, error) {
	b := bytes.TrimSpace(resp.body)
	if isEmptyJSON(b) {
		return []T{}, nil
	}
	var raw []json.RawMessage
	switch b[0] {
	case '[':
		if err := json.Unmarshal(b, &raw); err != nil {
			return nil, err
		}
	case '{':
		var top map[string]json.RawMessage
		if err := json.Unmarshal(b, &top); err != nil {
			return nil, err
		}
		v, ok := top[key]
		if !ok {
			return nil, errors.New("no key")
		}
		if err := json.Unmarshal(v, &raw); err != nil {
			return nil, err
		}
	default:
		return nil, errors.New("neither array nor object")
	}
	out := make([]T, len(raw))
	for i, el := range raw {
		if el = bytes.TrimSpace(el); len(el) == 0 || el[0] != '{' {
			return nil, errors.New("element not an object")
		}
		if elemKey != "" {
			var err error
			if el, err = unwrap(el, elemKey); err != nil {
				return nil, err
			}
		}
		if err := json.Unmarshal(el, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// The streaming decoder accepts exactly the replies the whole-array decoder
// accepted, with the same result, and fails only with a *DecodeError.
func FuzzDecodeListMatchesWhole(f *testing.F) {
	for _, s := range []string{`[{"id":"a"}]`, `{"servers":[{"id":"a","created_at":"2026-03-01T10:00:00Z"}],"total":1}`,
		`{"providers":[{"provider":{"id":"p"}},{"id":"q"}]}`, `{"servers":null}`, `{"servers":[],"servers":[{}]}`,
		`[{}, {"capabilities":["x"]}]`, `{"x":[1,{"servers":[]}],"servers":[{"id":"\u0061"}]}`, `[1]`, `[{}] x`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		resp := &response{status: 200, body: data}
		check := func(what string, got, want any, err, werr error) {
			if err != nil {
				var de *DecodeError
				require.ErrorAs(t, err, &de, "%s: error %v (%T) is not a *DecodeError", what, err, err)
			}
			require.Equal(t, (werr == nil), (err == nil), "%s %q: streaming err %v, whole err %v", what, data, err, werr)
			if err == nil {
				require.Equal(t, want, got, "%s %q: streaming %+v, whole %+v", what, data, got, want)
			}
		}
		got, err := decodeList[MCPServer](resp, "servers", "")
		want, werr := decodeListWhole[MCPServer](resp, "servers", "")
		check("servers", got, want, err, werr)
		gotP, err := decodeList[FederationProvider](resp, "providers", "provider")
		wantP, werr := decodeListWhole[FederationProvider](resp, "providers", "provider")
		check("providers", gotP, wantP, err, werr)
	})
}

func BenchmarkDecodeList(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"agents":[`)
	for i := 0; i < 1000; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"id":"6f1c2a4e-1d2b-4c3d-9e8f-0a1b2c3d4e5f","name":"billing-bot","org_id":"org-1","framework":"langchain",` +
			`"status":"active","capabilities":["read_invoices","send_mail"],"metadata":{"team":"finance"},"created_at":"2026-03-01T10:00:00Z"}`)
	}
	sb.WriteString(`],"total":1000}`)
	resp := &response{status: 200, body: []byte(sb.String())}
	b.Run("impl=whole", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(resp.body)))
		for i := 0; i < b.N; i++ {
			_, err := decodeListWhole[Agent](resp, "agents", "")
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=streaming", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(resp.body)))
		for i := 0; i < b.N; i++ {
			_, err := decodeList[Agent](resp, "agents", "")
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestCallsByID: the bodiless calls on one resource by id send the method
// to the id's escaped path, retry only a GET, decode the reply (from under
// the wrapper where there is one) and refuse an empty id before any I/O.
func TestCallsByID(t *testing.T) {
	srv := newRecServer(t, nil)
	c := newTestClient(t, srv.URL)
	cases := []struct {
		name, method, path, reply string
		call                      func(ctx context.Context, id string) (string, error)
	}{
		{"Agents.Get", http.MethodGet, "/api/v1/agents/a%2Fb%20c", `{"agent":{"id":"got"}}`,
			byID(c.Agents.Get, func(v *Agent) string { return v.ID })},
		{"Approvals.Get", http.MethodGet, "/mcp/approvals/a%2Fb%20c", `{"id":"got"}`,
			byID(c.Approvals.Get, func(v *ApprovalRequest) string { return v.ID })},
		{"Sessions.GetSession", http.MethodGet, "/mcp/sessions/a%2Fb%20c", `{"session_id":"got"}`,
			byID(c.Sessions.GetSession, func(v *Session) string { return v.SessionID })},
		{"Streaming.Get", http.MethodGet, "/api/v1/siem/destinations/a%2Fb%20c", `{"id":"got"}`,
			byID(c.Streaming.Get, func(v *SIEMDestination) string { return v.ID })},
		{"Delegations.InitSession", http.MethodPost, "/api/v1/delegations/a%2Fb%20c/session", `{"session_id":"got"}`,
			byID(c.Delegations.InitSession, func(v *Session) string { return v.SessionID })},
		{"AgentCards.Generate", http.MethodPost, "/api/v1/agents/a%2Fb%20c/card", `{"name":"got"}`,
			byID(c.AgentCards.Generate, func(v *AgentCard) string { return v.Name })},
		{"AgentCards.Get", http.MethodGet, "/api/v1/agents/a%2Fb%20c/card", `{"name":"got"}`,
			byID(c.AgentCards.Get, func(v *AgentCard) string { return v.Name })},
		{"AgentCards.Publish", http.MethodPut, "/api/v1/agents/a%2Fb%20c/card/publish", `{"name":"got"}`,
			byID(c.AgentCards.Publish, func(v *AgentCard) string { return v.Name })},
		{"AgentCards.GetPublic", http.MethodGet, "/a2a/agents/a%2Fb%20c/agent.json", `{"name":"got"}`,
			byID(c.AgentCards.GetPublic, func(v *AgentCard) string { return v.Name })},
	}
	for _, tc := range cases {
		srv.clear()
		srv.setHandler(reply(200, tc.reply))
		got, err := tc.call(ctxT(t), "a/b c")
		require.NoError(t, err, tc.name)
		assert.Equal(t, "got", got, "%s: decoded reply", tc.name)
		r := srv.only(t)
		assert.Equal(t, tc.method, r.Method, tc.name)
		assert.Equal(t, tc.path, r.EscapedPath, tc.name)
		assert.Empty(t, r.Body, "%s: a body was sent", tc.name)

		srv.clear()
		srv.setHandler(reply(503, ""))
		_, err = tc.call(ctxT(t), "a/b c")
		assert.ErrorIs(t, err, ErrAgentTrust, tc.name)
		want := 1
		if tc.method == http.MethodGet {
			want = 3 // retried
		}
		assert.Equal(t, want, srv.count(), "%s: requests after a 503", tc.name)

		srv.clear()
		_, err = tc.call(ctxT(t), "")
		wantValidation(t, err, tc.name)
		assert.Zero(t, srv.count(), "%s: an empty id was sent", tc.name)
	}
}

// byID adapts a call by id to return the decoded model's id (or name).
func byID[T any](call func(context.Context, string, ...RequestOption) (*T, error), id func(*T) string) func(context.Context, string) (string, error) {
	return func(ctx context.Context, s string) (string, error) {
		v, err := call(ctx, s)
		if err != nil {
			return "", err
		}
		return id(v), nil
	}
}
