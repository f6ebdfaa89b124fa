package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), &out)
	require.NoError(t, err, "run: %s", out.String())
	for _, want := range []string{
		`delete_file -> Tool "delete_file" was denied by policy.`,
		"read_file   -> contents of /tmp/report.txt: quarterly numbers",
		"answer: the report holds quarterly numbers",
		"checks 2, denied 1; telemetry: 2 events sent, 0 dropped",
	} {
		assert.Contains(t, out.String(), want, "output lacks it")
	}
	assert.Equal(t, 2, strings.Count(out.String(), " -> "), "tool steps in:\n%s", out.String())
}
