package allocs

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

var sink []byte

// Least counts what a call allocates, runs setup before every count and
// never inside one, and keeps the lowest count.
func TestLeast(t *testing.T) {
	assert.EqualValues(t, 0, Least(50, nil, func() {}))
	assert.EqualValues(t, 2, Least(50, nil, func() {
		sink = make([]byte, 64)
		sink = make([]byte, 128)
	}))

	setups := 0
	assert.EqualValues(t, 0, Least(50, func() {
		setups++
		sink = make([]byte, 64) // not counted
	}, func() {}))
	assert.Equal(t, Tries, setups)

	// Noise in some counts (another goroutine allocating during them)
	// does not reach the result when one count is clean.
	count := 0
	assert.EqualValues(t, 1, Least(50, func() { count++ }, func() {
		sink = make([]byte, 32)
		if count < Tries {
			for range 10 {
				sink = make([]byte, 32)
			}
		}
	}))
}
