package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSplitAddrs(t *testing.T) {
	cases := []struct {
		gateway, auth, audit string
		wantAuth, wantAudit  string
	}{
		// The layout the SDKs derive from a base URL on port 8081.
		{"127.0.0.1:8081", "", "", "127.0.0.1:8082", "127.0.0.1:8084"},
		{"[::1]:8081", "", "", "[::1]:8082", "[::1]:8084"},
		{":8081", "", "", ":8082", ":8084"},
		// Pinned addresses win.
		{"127.0.0.1:8081", "127.0.0.1:9002", "", "127.0.0.1:9002", "127.0.0.1:8084"},
		{"127.0.0.1:9000", "127.0.0.1:9001", "127.0.0.1:9003", "127.0.0.1:9001", "127.0.0.1:9003"},
		// Any other port: nothing derives, ephemeral ports.
		{"127.0.0.1:8080", "", "", "", ""},
		{"127.0.0.1:0", "", "", "", ""},
		{"127.0.0.1:80810", "", "", "", ""},
	}
	for _, tc := range cases {
		a, b := splitAddrs(tc.gateway, tc.auth, tc.audit)
		assert.Equal(t, tc.wantAuth, a, "splitAddrs(%q, %q, %q) = %q, %q; want %q, %q", tc.gateway, tc.auth, tc.audit, a, b, tc.wantAuth, tc.wantAudit)
		assert.Equal(t, tc.wantAudit, b, "splitAddrs(%q, %q, %q) = %q, %q; want %q, %q", tc.gateway, tc.auth, tc.audit, a, b, tc.wantAuth, tc.wantAudit)
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func stop(t *testing.T, cancel context.CancelFunc, done chan error) {
	t.Helper()
	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err, "run")
	case <-time.After(5 * time.Second):
		t.Error("dev server did not stop")
	}
}

// With -split and pinned ports, the printed exports are all a client needs:
// an SDK client configured from them alone issues a token and checks an
// action on the auth listener, and reports telemetry on the audit one.
func TestDevServerSplitPinnedPortsAndExports(t *testing.T) {
	authPort, auditPort := freePort(t), freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	env, done := startedEnv(t, ctx, "-addr", "127.0.0.1:0", "-split",
		"-auth-addr", fmt.Sprintf("127.0.0.1:%d", authPort), "-audit-addr", fmt.Sprintf("127.0.0.1:%d", auditPort))
	defer stop(t, cancel, done)

	want := fmt.Sprintf("http://127.0.0.1:%d", authPort)
	assert.Equal(t, want, env["AGENTTRUST_AUTH_URL"], "AGENTTRUST_AUTH_URL=%s, want %s", env["AGENTTRUST_AUTH_URL"], want)
	want = fmt.Sprintf("http://127.0.0.1:%d", auditPort)
	assert.Equal(t, want, env["AGENTTRUST_AUDIT_URL"], "AGENTTRUST_AUDIT_URL=%s, want %s", env["AGENTTRUST_AUDIT_URL"], want)
	for name, v := range env {
		t.Setenv(name, v)
	}
	ctr := &http.Transport{}
	defer ctr.CloseIdleConnections()
	c, err := agenttrust.FromEnv(agenttrust.WithHTTPClient(&http.Client{Transport: ctr}))
	require.NoError(t, err)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	agent, err := c.Agents.Create(ctx2, agenttrust.AgentCreateParams{Name: "split-bot", Capabilities: []string{"read"}})
	require.NoError(t, err, "register on the gateway")
	_, err = c.Tokens.Issue(ctx2, agenttrust.TokenIssueParams{AgentID: agent.ID, Scopes: []string{"read"}})
	require.NoError(t, err, "issue on the auth listener")
	_, err = c.Actions.Check(ctx2, agenttrust.ActionCheckParams{AgentID: agent.ID, Action: "ls"})
	require.NoError(t, err, "check on the auth listener")
	_, err = c.Telemetry.Report(ctx2, agenttrust.TelemetryReportParams{AgentID: agent.ID, SessionID: "s-1"})
	require.NoError(t, err, "report on the audit listener")

	// The listeners really are split: the auth API is not on the gateway.
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	status, _ := post(t, hc, env["AGENTTRUST_URL"]+"/api/v1/agent-tokens/issue", env["AGENTTRUST_API_KEY"], `{}`)
	assert.Equal(t, http.StatusNotFound, status, "token issue on the gateway listener: %d, want 404", status)
}

// Without -split every export is printed too, all with the one URL, so a
// client never derives other ports from it.
func TestDevServerExportsWithoutSplit(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	env, done := startedEnv(t, ctx, "-addr", "127.0.0.1:0")
	defer stop(t, cancel, done)
	u := env["AGENTTRUST_URL"]
	assert.True(t, strings.HasPrefix(u, "http://127.0.0.1:"), "exports %v", env)
	assert.Equal(t, u, env["AGENTTRUST_AUTH_URL"], "exports %v", env)
	assert.Equal(t, u, env["AGENTTRUST_AUDIT_URL"], "exports %v", env)
}

func TestDevServerFlagErrors(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, args := range [][]string{
		{"-addr", "127.0.0.1:0", "-auth-addr", "127.0.0.1:0"}, // needs -split
		{"-addr", "127.0.0.1:0", "-read-timeout", "0s"},
		{"-addr", "127.0.0.1:0", "-idle-timeout", "-1s"},
		{"-addr", "127.0.0.1:0", "-split", "-auth-addr", "not an address"},
	} {
		assert.Error(t, run(ctx, args, io.Discard, io.Discard), "run %q succeeded", args)
	}
}

// A client sending its body one byte at a time is cut off after
// -read-timeout, and an unauthenticated 8 MiB POST is answered 401 without
// the body being read.
func TestDevServerTimeoutsAndUnauthenticatedBodies(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	url, key, done := started(t, ctx, "-addr", "127.0.0.1:0", "-read-timeout", "300ms")
	defer stop(t, cancel, done)

	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/v1/agents HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n", key)
	start := time.Now()
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_, _ = io.Copy(io.Discard, conn)
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case <-closed:
			break wait
		case <-tick.C:
			_, _ = conn.Write([]byte("x"))
			require.LessOrEqual(t, time.Since(start), 10*time.Second, "a slow body held the connection for 10 s")
		}
	}
	d := time.Since(start)
	assert.LessOrEqual(t, d, 3*time.Second, "the connection lasted %v, want about the 300 ms read timeout", d)

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("POST", url+"/api/v1/agents", strings.NewReader(strings.Repeat("x", 8<<20)))
	req.Header.Set("X-API-Key", "sk_wrong")
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err == nil {
		res.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, res.StatusCode, "status %d, want 401", res.StatusCode)
	}
	waitRSTAvoidance(t)
}

// waitRSTAvoidance waits (up to 3 s) for net/http to finish closing the
// connections whose request body the server left unread: it keeps each one
// for 500 ms before closing it (RST avoidance), which goleak would see.
func waitRSTAvoidance(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	assert.Eventually(t, func() bool {
		return !strings.Contains(string(buf[:runtime.Stack(buf, true)]), "closeWriteAndWait")
	}, 3*time.Second, 20*time.Millisecond, "connections still closing after 3 s")
}
