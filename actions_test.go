package agenttrust

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTruncateRunes(t *testing.T) {
	cases := []struct {
		in   string
		n    int
		want string
	}{
		{"", 5, ""},
		{"abc", 5, "abc"},
		{"abcdef", 3, "abc"},
		{"abc", 3, "abc"},
		{"abc", 0, ""},
		{"abc", -1, ""},
		{"héllo", 2, "hé"},
		{"日本語テキスト", 3, "日本語"},
		{"日本語", 3, "日本語"},
		{"日本語", 2, "日本"},
		{"😀😀😀", 2, "😀😀"},
		{"a😀", 1, "a"},
		{"e\u0301e\u0301", 1, "e"}, // a combining mark is its own rune
		{"\xff\xfeabc", 3, "\xff\xfea"},
		{"ab\xff", 2, "ab"},
	}
	for _, tc := range cases {
		if got := TruncateRunes(tc.in, tc.n); got != tc.want {
			t.Errorf("TruncateRunes(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestCheckSummaryTruncatedByRunes(t *testing.T) {
	srv := newRecServer(t, reply(200, `{"allowed":true}`))
	c := newTestClient(t, srv.URL)
	for _, r := range []string{"é", "日", "😀", "a"} {
		srv.clear()
		in := strings.Repeat(r, 300)
		if _, err := c.Actions.Check(ctxT(t), ActionCheckParams{AgentID: "a1", ToolInputSummary: in}); err != nil {
			t.Fatal(err)
		}
		body := srv.only(t).Body
		if !utf8.Valid(body) {
			t.Fatalf("body is not valid UTF-8")
		}
		got, ok := decodeMap(t, body)["action_input_summary"].(string)
		if !ok {
			t.Fatalf("action_input_summary missing: %s", body)
		}
		if utf8.RuneCountInString(got) != 200 || got != strings.Repeat(r, 200) || !utf8.ValidString(got) {
			t.Errorf("%q x300 arrived as %d runes (%d bytes)", r, utf8.RuneCountInString(got), len(got))
		}
	}
	// Exactly 200 runes pass untouched.
	srv.clear()
	in := strings.Repeat("日", 200)
	c.Actions.Check(ctxT(t), ActionCheckParams{AgentID: "a1", ToolInputSummary: in})
	if got := decodeMap(t, srv.only(t).Body)["action_input_summary"]; got != in {
		t.Errorf("200 runes changed")
	}
}

func TestCheckDenialIsNotAnError(t *testing.T) {
	srv := newRecServer(t, reply(200, `{"allowed":false,"reason":"policy","elevation_required":true,"approval_id":"ap-9"}`))
	c := newTestClient(t, srv.URL)
	r, err := c.Actions.Check(ctxT(t), ActionCheckParams{AgentID: "a1", ToolName: "rm"})
	if err != nil || r.Allowed || !r.ElevationRequired || r.ApprovalID != "ap-9" || r.Reason != "policy" {
		t.Errorf("%+v %v", r, err)
	}
	srv.setHandler(reply(403, `{"error":"forbidden"}`))
	_, err = c.Actions.Check(ctxT(t), ActionCheckParams{AgentID: "a1"})
	onlySentinel(t, err, ErrAuthorization)
}
