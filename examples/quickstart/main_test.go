package main

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestQuickstartOnFakeGateway(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, false, "delete_database"), "run output:\n%s", out.String())
	for _, want := range []string{
		"read_file: allowed",
		"delete_database: denied: destructive operations need a human",
		"1 event(s) delivered",
		"inactive now:",
		"done.",
	} {
		assert.Contains(t, out.String(), want, "transcript lacks %q:\n%s", want, out.String())
	}
	assert.Equal(t, strings.Count(out.String(), "at_[redacted]"), strings.Count(out.String(), "at_"), "transcript shows a token:\n%s", out.String())
}

// devServer builds cmd/agenttrust-devserver, runs it with args and sets the
// environment it prints (AGENTTRUST_URL, ..._AUTH_URL, ..._AUDIT_URL,
// ..._API_KEY) for the rest of the test, as a user following the README
// would. The server is interrupted when the test ends.
func devServer(t *testing.T, args ...string) {
	t.Helper()
	goBin, err := exec.LookPath("go")
	require.NoError(t, err, "the go command is needed to build the dev server")
	bin := filepath.Join(t.TempDir(), "agenttrust-devserver")
	build := exec.Command(goBin, "build", "-o", bin, "github.com/agenttrustid/agenttrust-go/cmd/agenttrust-devserver")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %v\n%s", err, out)
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case err := <-exited:
			assert.NoError(t, err, "dev server")
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("the dev server ignored SIGINT")
		}
	})
	env := map[string]string{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if kv, ok := strings.CutPrefix(sc.Text(), "export "); ok {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
			if k == "AGENTTRUST_API_KEY" {
				break
			}
		}
	}
	go func() {
		for sc.Scan() {
		}
		exited <- cmd.Wait()
	}()
	for _, k := range []string{"AGENTTRUST_URL", "AGENTTRUST_AUTH_URL", "AGENTTRUST_AUDIT_URL", "AGENTTRUST_API_KEY"} {
		require.NotEqual(t, "", env[k], "the dev server did not export %s: %v", k, env)
		t.Setenv(k, env[k])
	}
}

func runWithEnv(t *testing.T) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, &out, true, "delete_database")
	return out.String(), err
}

// The README's second path: the dev server with its default flags (on an
// ephemeral port here, since 8080 may be taken) allows everything, and the
// quickstart says so instead of failing.
func TestQuickstartOnDevServerDefaults(t *testing.T) {
	devServer(t, "-addr", "127.0.0.1:0")
	out, err := runWithEnv(t)
	require.NoError(t, err, "run: %v\n%s", err, out)
	for _, want := range []string{"gateway: http://127.0.0.1:", "read_file: allowed", "delete_database: allowed", "2 event(s) delivered", "done."} {
		assert.Contains(t, out, want, "transcript lacks %q:\n%s", want, out)
	}
}

// With a policy, and split services, the transcript shows the gateway's
// decisions: an approval request and a denial.
func TestQuickstartOnDevServerWithPolicy(t *testing.T) {
	policy := filepath.Join(t.TempDir(), "policy.json")
	require.NoError(t, os.WriteFile(policy, []byte(`{"deny": {"delete_database": "not on prod"}, "elevation": ["read_file"]}`), 0o600))
	devServer(t, "-addr", "127.0.0.1:0", "-split", "-policy", policy)
	out, err := runWithEnv(t)
	require.NoError(t, err, "run: %v\n%s", err, out)
	for _, want := range []string{"read_file: needs a human approval (request ", "delete_database: denied: not on prod", "0 event(s) delivered", "done."} {
		assert.Contains(t, out, want, "transcript lacks %q:\n%s", want, out)
	}
}

// No decision at all is a failure, not a denial.
func TestQuickstartFailsWithoutGateway(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "http://" + ln.Addr().String()
	ln.Close()
	for _, k := range []string{"AGENTTRUST_URL", "AGENTTRUST_AUTH_URL", "AGENTTRUST_AUDIT_URL"} {
		t.Setenv(k, url)
	}
	t.Setenv("AGENTTRUST_API_KEY", "sk_test_none")
	out, err := runWithEnv(t)
	require.Error(t, err, "run succeeded without a gateway:\n%s", out)
}
