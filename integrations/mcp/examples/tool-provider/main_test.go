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

// The example runs end to end against the fake gateway.
func TestRun(t *testing.T) {
	t.Setenv("AGENTTRUST_URL", "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{"tool word_count", "word_count: 4 words", "refused", "ok"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Count(out.String(), "at_") != strings.Count(out.String(), "at_[redacted]") {
		t.Errorf("the output shows a token:\n%s", out.String())
	}
}
