package strpack

import (
	"bytes"
	"testing"
)

func key(parts ...[]string) []byte {
	var b []byte
	for _, p := range parts {
		b = AppendSet(b, p)
	}
	return b
}

// The encoding is injective over sequences of strings and order-free
// within a set.
func TestKeysAreUnambiguous(t *testing.T) {
	distinct := [][]byte{
		AppendString(AppendString(nil, "a:b"), ""),
		AppendString(AppendString(nil, "a"), ":b"),
		AppendString(AppendString(nil, ""), "a:b"),
		key([]string{"a:b"}),
		key([]string{"a", "b"}),
		key([]string{"a", "b", "b"}),
		key([]string{"a", "b"}, nil),
		key(nil, []string{"a", "b"}),
	}
	for i := range distinct {
		for j := i + 1; j < len(distinct); j++ {
			if bytes.Equal(distinct[i], distinct[j]) {
				t.Errorf("keys %d and %d collide: %q", i, j, distinct[i])
			}
		}
	}
	if !bytes.Equal(key([]string{"b", "a", "c"}), key([]string{"c", "b", "a"})) {
		t.Error("the order of a set changes its key")
	}
	many := []string{"j", "i", "h", "g", "f", "e", "d", "c", "b", "a"}
	if !bytes.Equal(key(many), key([]string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"})) {
		t.Error("a set of more than eight is not sorted")
	}
	if many[0] != "j" {
		t.Error("AppendSet reordered the caller's slice")
	}
}

func TestAppendSetAllocatesNothingForSmallSets(t *testing.T) {
	set := []string{"write", "read", "admin"}
	var buf [64]byte
	if n := testing.AllocsPerRun(100, func() { _ = AppendSet(buf[:0], set) }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

func TestClone(t *testing.T) {
	var buf [4]string
	src := []string{"a", "b", "c"}
	out, rest := Clone(buf[:], src)
	if len(out) != 3 || cap(out) != 3 || &out[0] != &buf[0] || len(rest) != 1 {
		t.Fatalf("out %v (cap %d), rest %d: want the front of buf", out, cap(out), len(rest))
	}
	src[0] = "changed"
	if out[0] != "a" {
		t.Error("the copy shares the source")
	}
	if grown := append(out, "x"); buf[3] != "" || &grown[0] == &buf[0] {
		t.Error("appending to the copy wrote into buf")
	}
	// Too long for what is left: a new slice, and rest is untouched.
	long, rest2 := Clone(rest, []string{"1", "2"})
	if len(long) != 2 || &rest2[0] != &rest[0] || &long[0] == &rest[0] {
		t.Error("a slice that does not fit was not cloned apart")
	}
	if n, _ := Clone(buf[:], nil); n != nil {
		t.Error("nil became non-nil")
	}
	if e, _ := Clone(buf[:], []string{}); e == nil || len(e) != 0 {
		t.Error("empty became nil")
	}
	if e, _ := Clone(nil, []string{}); e == nil {
		t.Error("empty became nil with no buffer")
	}
}
