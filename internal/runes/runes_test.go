package runes

import "testing"

func TestTruncate(t *testing.T) {
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
		if got := Truncate(tc.in, tc.n); got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
