package strpack

import (
	"bytes"
	"testing"

	"github.com/agenttrustid/agenttrust-go/internal/allocs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
			assert.False(t, bytes.Equal(distinct[i], distinct[j]), "keys %d and %d collide: %q", i, j, distinct[i])
		}
	}
	assert.True(t, bytes.Equal(key([]string{"b", "a", "c"}), key([]string{"c", "b", "a"})), "the order of a set changes its key")
	many := []string{"j", "i", "h", "g", "f", "e", "d", "c", "b", "a"}
	assert.True(t, bytes.Equal(key(many), key([]string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"})), "a set of more than eight is not sorted")
	assert.Equal(t, "j", many[0], "AppendSet reordered the caller's slice")
}

func TestAppendSetAllocatesNothingForSmallSets(t *testing.T) {
	set := []string{"write", "read", "admin"}
	var buf [64]byte
	n := allocs.Least(100, nil, func() { _ = AppendSet(buf[:0], set) })
	assert.EqualValues(t, 0, n, "%v allocations", n)
}

func TestClone(t *testing.T) {
	var buf [4]string
	src := []string{"a", "b", "c"}
	out, rest := Clone(buf[:], src)
	require.Len(t, out, 3, "out %v (cap %d), rest %d: want the front of buf", out, cap(out), len(rest))
	require.EqualValues(t, 3, cap(out), "out %v (cap %d), rest %d: want the front of buf", out, cap(out), len(rest))
	require.Same(t, &buf[0], &out[0], "out %v (cap %d), rest %d: want the front of buf", out, cap(out), len(rest))
	require.Len(t, rest, 1, "out %v (cap %d), rest %d: want the front of buf", out, cap(out), len(rest))
	src[0] = "changed"
	assert.Equal(t, "a", out[0], "the copy shares the source")
	grown := append(out, "x")
	assert.Equal(t, "", buf[3], "appending to the copy wrote into buf")
	assert.NotSame(t, &buf[0], &grown[0], "appending to the copy wrote into buf")
	// Too long for what is left: a new slice, and rest is untouched.
	long, rest2 := Clone(rest, []string{"1", "2"})
	require.Len(t, long, 2, "a slice that does not fit was not cloned apart")
	assert.Same(t, &rest[0], &rest2[0], "a slice that does not fit was not cloned apart")
	assert.NotSame(t, &rest[0], &long[0], "a slice that does not fit was not cloned apart")
	n, _ := Clone(buf[:], nil)
	assert.Nil(t, n, "nil became non-nil")
	e, _ := Clone(buf[:], []string{})
	assert.NotNil(t, e, "empty became nil")
	assert.Empty(t, e, "empty became nil")
	e, _ = Clone(nil, []string{})
	assert.NotNil(t, e, "empty became nil with no buffer")
}
