package agenttrust

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

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
		if len(body) > bodyCap {
			t.Fatalf("%s: body of %d bytes is over the cap", name, len(body))
		}
		srv := newRecServer(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body) })
		c := newTestClient(t, srv.URL)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		got, err := c.Agents.List(ctxT(t), AgentListParams{})
		runtime.ReadMemStats(&after)
		var de *DecodeError
		if !errors.As(err, &de) || !strings.Contains(de.Message, "MaxListItems") || got != nil {
			t.Fatalf("%s: %d agents, err %v; want a decode error naming MaxListItems", name, len(got), err)
		}
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s: %d bytes of body, %.1f MiB allocated (%.1fx the body cap)", name, len(body), float64(alloc)/(1<<20), float64(alloc)/bodyCap)
		if alloc > 20*bodyCap {
			t.Errorf("%s: %d MiB allocated for a %d MiB body", name, alloc>>20, len(body)>>20)
		}
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
			if n <= MaxListItems && (err != nil || len(got) != n) {
				t.Errorf("%d elements: %d decoded, %v", n, len(got), err)
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
		if err != nil || len(got) != len(want) || got == nil {
			t.Errorf("%q: %v %v", body, got, err)
			continue
		}
		for i := range want {
			if got[i].ID != want[i] {
				t.Errorf("%q: %v", body, got)
			}
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
				if !errors.As(err, &de) {
					t.Fatalf("%s: error %v (%T) is not a *DecodeError", what, err, err)
				}
			}
			if (err == nil) != (werr == nil) {
				t.Fatalf("%s %q: streaming err %v, whole err %v", what, data, err, werr)
			}
			if err == nil && !reflect.DeepEqual(got, want) {
				t.Fatalf("%s %q: streaming %+v, whole %+v", what, data, got, want)
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
			if _, err := decodeListWhole[Agent](resp, "agents", ""); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=streaming", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(resp.body)))
		for i := 0; i < b.N; i++ {
			if _, err := decodeList[Agent](resp, "agents", ""); err != nil {
				b.Fatal(err)
			}
		}
	})
}
