package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

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
	if err := run(ctx, &telemetry, &log, ""); err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	for _, want := range []string{"delete_file  denied", "send_email   waiting for approval", "failed open",
		"checks 5, denied 2, failed open 1, telemetry sent 3, dropped 0"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("transcript lacks %q:\n%s", want, log.String())
		}
	}
	out := telemetry.String()
	for _, want := range []string{`"Name":"agenttrust.guard.check"`, `"Name":"agenttrust.actions.check"`,
		`"Name":"agenttrust.telemetry.report"`, `"agenttrust.guard.decisions"`, `"agenttrust.guard.failed_open"`,
		`"agenttrust.telemetry.events.sent"`, `"Value":"elevation"`, `"Value":"failed_open"`} {
		if !strings.Contains(out, want) {
			t.Errorf("exported telemetry lacks %s", want)
		}
	}
	if strings.Contains(out, "q3.csv") || strings.Contains(out, "cfo@example.com") {
		t.Error("a tool input reached the exporters")
	}
}
