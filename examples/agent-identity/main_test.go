package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"private key never sent",
		"WIMSE token for spiffe://agenttrust.id/agent/",
		"valid=true",
		"check without credentials: refused=true",
		"guard: read_file   allowed=true",
		"guard: delete_file denied: destructive tools are not allowed",
		"sender-constrained checks accepted: 3; WIMSE tokens issued: 2",
		"replayed DPoP proof: first 200, replay 401 (jti_replayed)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
