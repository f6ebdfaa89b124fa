package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDevServerSecurityFlagsInBanner(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // print the banner and return at once
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "require_proof_of_possession=false require_sender_constrained_tokens=false"},
		{[]string{"-require-pop"}, "require_proof_of_possession=true require_sender_constrained_tokens=false"},
		{[]string{"-require-sender-constrained"}, "require_proof_of_possession=false require_sender_constrained_tokens=true"},
		{[]string{"-require-pop", "-require-sender-constrained"}, "require_proof_of_possession=true require_sender_constrained_tokens=true"},
	} {
		var out bytes.Buffer
		require.NoError(t, run(ctx, append([]string{"-addr", "127.0.0.1:0"}, tc.args...), &out, io.Discard), "run %q", tc.args)
		assert.Contains(t, out.String(), "security settings: "+tc.want+"\n", "run %q banner:\n%s", tc.args, out.String())
	}
}

func TestDevServerSecurityFlagsEnforced(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url, key, done := started(t, ctx, "-addr", "127.0.0.1:0", "-require-pop", "-require-sender-constrained")
	defer func() { cancel(); <-done }()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}

	req, _ := http.NewRequest("GET", url+"/api/v1/orgs/security-settings", nil)
	req.Header.Set("X-API-Key", key)
	res, err := hc.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.EqualValues(t, 200, res.StatusCode, "settings: %d %s", res.StatusCode, b)
	require.Contains(t, string(b), `"require_proof_of_possession":true`, "settings: %d %s", res.StatusCode, b)
	require.Contains(t, string(b), `"require_sender_constrained_tokens":true`, "settings: %d %s", res.StatusCode, b)

	status, body := post(t, hc, url+"/api/v1/agents", key, `{"name": "bot", "framework": "custom", "capabilities": [], "metadata": {}}`)
	require.EqualValues(t, 201, status, "create agent: %d %s", status, body)
	id := body[strings.Index(body, `"id":"`)+6:]
	id = id[:strings.Index(id, `"`)]
	status, body = post(t, hc, url+"/api/v1/wimse/token", key, `{"agent_id": "`+id+`"}`)
	require.EqualValues(t, 401, status, "token without proof: %d %s", status, body)
	status, body = post(t, hc, url+"/api/v1/agenttrust/check", key, `{"agent_id": "`+id+`", "session_id": "", "action_name": "ls", "action_source": "api", "action_input_summary": ""}`)
	require.EqualValues(t, 401, status, "check without credentials: %d %s", status, body)
}
