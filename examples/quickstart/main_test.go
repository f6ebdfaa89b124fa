package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestQuickstartOnFakeGateway(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out, false, "delete_database"); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"read_file: allowed",
		"delete_database: denied: destructive operations need a human",
		"event(s) delivered",
		"inactive now:",
		"done.",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("transcript lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Count(out.String(), "at_") != strings.Count(out.String(), "at_[redacted]") {
		t.Errorf("transcript shows a token:\n%s", out.String())
	}
}
