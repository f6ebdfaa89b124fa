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
	t.Setenv("AGENTTRUST_URL", "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out), "run output:\n%s", out.String())
	for _, want := range []string{
		"read_file   ran",
		"delete_file denied: destructive tools are not allowed",
		"send_email  needs approval",
		"send_email  approved by demo-operator",
		"send_email  ran",
		"fetch_url   failed (*fs.PathError)",
		"3 events sent, 0 dropped",
	} {
		assert.Contains(t, out.String(), want, "output lacks %q:\n%s", want, out.String())
	}
}
