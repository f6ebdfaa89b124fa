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
		"agent: 200 contents of /files/q1.txt, read by agent-1",
		"agent: 200 contents of /files/q2.txt, read by agent-1",
		"tokens issued for the agent: 1 ",
		`no token: 401 {"error":"unauthorized"`,
		"token without files:read: 401",
		"scope the agent lacks: not sent (",
	} {
		assert.Contains(t, out.String(), want, "output lacks %q:\n%s", want, out.String())
	}
}
