// Package strpack packs strings compactly: into unambiguous cache keys, and
// string slices into storage the caller has already allocated.
package strpack

import (
	"encoding/binary"
	"slices"
)

// AppendString appends s to b, prefixed with its length, so that a sequence
// of appended strings decodes one way only: "a:b" then "" differs from "a"
// then ":b".
func AppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// AppendSet appends the strings of set as a set: sorted, so that the order
// does not matter, duplicates kept, and preceded by their count. Up to eight
// strings are sorted without allocating.
func AppendSet(b []byte, set []string) []byte {
	var arr [8]string
	sorted := append(arr[:0], set...)
	slices.Sort(sorted)
	b = binary.AppendUvarint(b, uint64(len(sorted)))
	for _, s := range sorted {
		b = AppendString(b, s)
	}
	return b
}

// Clone copies src into the front of buf when it fits, so that the copy
// lives in the caller's allocation, and otherwise into a new slice. out
// shares nothing with src, has no spare capacity (appending to it cannot
// write into buf), and is nil when src is nil. rest is what is left of buf
// for the next slice.
func Clone(buf, src []string) (out, rest []string) {
	if len(src) == 0 {
		return src[:0:0], buf // nil stays nil, empty stays empty
	}
	if len(src) > len(buf) {
		return slices.Clone(src), buf
	}
	n := copy(buf, src)
	return buf[:n:n], buf[n:]
}
