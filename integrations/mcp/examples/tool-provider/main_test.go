package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The example runs end to end against the fake gateway.
func TestRun(t *testing.T) {
	t.Setenv("AGENTTRUST_URL", "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, &out)
	require.NoError(t, err, "run: %s", out.String())
	for _, want := range []string{"tool word_count", "word_count: 4 words", "refused", "ok"} {
		assert.Contains(t, out.String(), want, "output lacks it")
	}
	assert.Equal(t, strings.Count(out.String(), "at_[redacted]"), strings.Count(out.String(), "at_"), "the output shows a token:\n%s", out.String())
}
