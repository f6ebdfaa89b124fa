package optcheck

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPositiveSize(t *testing.T) {
	dst := 7
	require.NoError(t, PositiveSize("WithX", 1, &dst))
	assert.Equal(t, 1, dst)
	for _, n := range []int{0, -1, -1 << 62} {
		dst = 7
		err := PositiveSize("WithX", n, &dst)
		require.Error(t, err, "n = %d", n)
		assert.Equal(t, "WithX: size must be positive, got "+strconv.Itoa(n), err.Error())
		assert.Equal(t, 7, dst, "n = %d: the size was set", n)
	}
}
