package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// started runs the dev server in the background and returns its printed
// URL and key, and a channel with run's result.
func started(t *testing.T, ctx context.Context, args ...string) (url, key string, done chan error) {
	t.Helper()
	env, done := startedEnv(t, ctx, args...)
	return env["AGENTTRUST_URL"], env["AGENTTRUST_API_KEY"], done
}

// startedEnv runs the dev server in the background and returns the
// variables of its export lines, and a channel with run's result. It checks
// that the banner's URL and key agree with the exports.
func startedEnv(t *testing.T, ctx context.Context, args ...string) (env map[string]string, done chan error) {
	t.Helper()
	pr, pw := io.Pipe()
	done = make(chan error, 1)
	go func() {
		err := run(ctx, args, pw, io.Discard)
		pw.CloseWithError(io.EOF)
		done <- err
	}()
	env = map[string]string{}
	var url, key string
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		line := sc.Text()
		if u, ok := strings.CutPrefix(line, "AgentTrust fake gateway listening on "); ok {
			url = u
		}
		if k, ok := strings.CutPrefix(line, "API key: "); ok {
			key = k
		}
		if kv, ok := strings.CutPrefix(line, "export "); ok {
			name, value, _ := strings.Cut(kv, "=")
			env[name] = value
			if name == "AGENTTRUST_API_KEY" {
				break
			}
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if url == "" || key == "" {
		// No banner: the server ended; say why (read only on this path, as
		// it blocks while the server runs).
		require.FailNow(t, "no banner", "url %q, key %q, exports %v: %v", url, key, env, <-done)
	}
	require.Equal(t, url, env["AGENTTRUST_URL"], "banner: url %q, key %q, exports %v", url, key, env)
	require.Equal(t, key, env["AGENTTRUST_API_KEY"], "banner: url %q, key %q, exports %v", url, key, env)
	return env, done
}

func post(t *testing.T, hc *http.Client, url, key, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("X-API-Key", key)
	req.Header.Set("Content-Type", "application/json")
	res, err := hc.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestDevServerPolicyAndShutdown(t *testing.T) {
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.json")
	require.NoError(t, os.WriteFile(policy, []byte(`{"deny": {"rm": "destructive tool"}, "elevation": ["deploy"]}`), 0o600))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url, key, done := started(t, ctx, "-addr", "127.0.0.1:0", "-policy", policy, "-api-key", "sk_test_fixed")
	require.Equal(t, "sk_test_fixed", key, "key %q", key)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}

	// The check goes to an unknown agent first, so seed one over HTTP.
	status, body := post(t, hc, url+"/api/v1/agents", key, `{"name": "bot", "framework": "custom", "capabilities": [], "metadata": {}}`)
	require.EqualValues(t, 201, status, "create agent: %d %s", status, body)
	id := body[strings.Index(body, `"id":"`)+6:]
	id = id[:strings.Index(id, `"`)]
	check := func(tool string) string {
		_, b := post(t, hc, url+"/api/v1/agenttrust/check", key, `{"agent_id": "`+id+`", "session_id": "", "action_name": "`+tool+`", "action_source": "api", "action_input_summary": ""}`)
		return b
	}
	b := check("rm")
	require.Contains(t, b, `"reason":"destructive tool"`, "deny: %s", b)
	require.Contains(t, b, `"allowed":false`, "deny: %s", b)
	b = check("deploy")
	require.Contains(t, b, `"elevation_required":true`, "elevation: %s", b)
	b = check("ls")
	require.Contains(t, b, `"allowed":true`, "allow: %s", b)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "run")
	case <-time.After(5 * time.Second):
		t.Fatal("dev server did not stop")
	}
	_, err := hc.Get(url + "/health")
	require.Error(t, err, "server still answering after shutdown")
}

func TestDevServerStopsOnSIGINT(t *testing.T) {
	url, _, done := started(t, context.Background(), "-addr", "127.0.0.1:0", "-split")
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGINT))
	select {
	case err := <-done:
		require.NoError(t, err, "run")
	case <-time.After(5 * time.Second):
		t.Fatal("dev server ignored SIGINT")
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	_, err := (&http.Client{Transport: tr}).Get(url + "/health")
	require.Error(t, err, "server still answering after SIGINT")
}

func TestDevServerBadPolicy(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"deny": {}, "elevate": ["x"]}`), 0o600))
	// An already cancelled context makes a valid configuration return nil
	// at once instead of serving, so a check that went missing fails fast.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, run(ctx, []string{"-addr", "127.0.0.1:0"}, io.Discard, io.Discard), "valid configuration")
	for _, args := range [][]string{
		{"-addr", "127.0.0.1:0", "-policy", bad},
		{"-addr", "127.0.0.1:0", "-policy", filepath.Join(dir, "missing.json")},
		{"-addr", "not an address"},
		{"-nope"},
		{"-addr", "127.0.0.1:0", "extra"},
	} {
		assert.Error(t, run(ctx, args, io.Discard, io.Discard), "run %q succeeded", args)
	}
}
