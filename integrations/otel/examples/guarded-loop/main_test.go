package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The example runs end to end against the fake gateway and prints the
// spans and metrics of every outcome.
func TestRun(t *testing.T) {
	t.Setenv("AGENTTRUST_URL", "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var telemetry, log bytes.Buffer
	err := run(ctx, &telemetry, &log, "")
	require.NoError(t, err, "run: %s", log.String())
	for _, want := range []string{"delete_file  denied", "send_email   waiting for approval", "failed open",
		"checks 5, denied 2, failed open 1, telemetry sent 3, dropped 0"} {
		assert.Contains(t, log.String(), want, "transcript lacks it")
	}
	out := telemetry.String()
	for _, want := range []string{`"Name":"agenttrust.guard.check"`, `"Name":"agenttrust.actions.check"`,
		`"Name":"agenttrust.telemetry.report"`, `"agenttrust.guard.decisions"`, `"agenttrust.guard.failed_open"`,
		`"agenttrust.telemetry.events.sent"`, `"Value":"elevation"`, `"Value":"failed_open"`} {
		assert.Contains(t, out, want, "exported telemetry lacks it")
	}
	assert.NotContains(t, out, "q3.csv", "a tool input reached the exporters")
	assert.NotContains(t, out, "cfo@example.com", "a tool input reached the exporters")
}
