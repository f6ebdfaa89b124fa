package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		`delete_file -> Tool "delete_file" was denied by policy.`,
		"read_file   -> contents of /tmp/report.txt: quarterly numbers",
		"answer: the report holds quarterly numbers",
		"checks 2, denied 1; telemetry: 2 events sent, 0 dropped",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
