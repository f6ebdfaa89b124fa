package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	t.Setenv("AGENTTRUST_URL", "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"read_file   ran",
		"delete_file denied: destructive tools are not allowed",
		"send_email  needs approval",
		"send_email  approved by demo-operator",
		"send_email  ran",
		"fetch_url   failed (*fs.PathError)",
		"3 events sent, 0 dropped",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
