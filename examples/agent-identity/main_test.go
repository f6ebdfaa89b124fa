package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out), "run output:\n%s", out.String())
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
		assert.Contains(t, out.String(), want, "output lacks %q:\n%s", want, out.String())
	}
}
