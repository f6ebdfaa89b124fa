package runes

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

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
		got := Truncate(tc.in, tc.n)
		assert.Equal(t, tc.want, got, "Truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
	}
}
