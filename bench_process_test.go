package agenttrust

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	"github.com/stretchr/testify/require"
)

// benchGatewayEnv, when set, makes the test binary serve a gateway instead
// of running tests: the benchmarks that measure the client's own CPU time
// run the gateway in a process of its own this way. Its value is the
// gateway: "fake" or "answer".
const benchGatewayEnv = "AGENTTRUST_BENCH_GATEWAY"

// serveBenchGateway serves the gateway kind names, writes
// "<gateway URL> <auth URL> <API key>" on one line to out, and serves until
// in reaches EOF: the parent closed the pipe or died.
//
// "fake" is the fake gateway with proofs of possession required for WIMSE
// tokens (sender-constrained checks stay optional, so that it serves plain
// and credentialed checks alike; it verifies the token and the proof
// whenever a check carries them). "answer" answers challenges, tokens and
// checks without verifying anything (identityAnswer), so that a plain and a
// credentialed check wait for it equally long.
func serveBenchGateway(kind string, in io.Reader, out, errOut io.Writer) int {
	var urls []string
	switch kind {
	case "fake":
		srv, err := agenttrusttest.NewServer(
			agenttrusttest.WithSecuritySettings(agenttrusttest.SecuritySettings{RequireProofOfPossession: true}),
			agenttrusttest.WithRequestLogLimit(16, 1<<16))
		if err != nil {
			fmt.Fprintln(errOut, "bench gateway:", err)
			return 1
		}
		defer srv.Close()
		urls = []string{srv.URL(), srv.AuthURL(), srv.APIKey()}
	case "answer":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(errOut, "bench gateway:", err)
			return 1
		}
		hs := &http.Server{Handler: http.HandlerFunc(identityAnswer), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = hs.Serve(ln) }()
		defer hs.Close()
		u := "http://" + ln.Addr().String()
		urls = []string{u, u, testKey}
	default:
		fmt.Fprintf(errOut, "bench gateway: unknown kind %q\n", kind)
		return 2
	}
	if _, err := fmt.Fprintln(out, strings.Join(urls, " ")); err != nil {
		fmt.Fprintln(errOut, "bench gateway:", err)
		return 1
	}
	_, _ = io.Copy(io.Discard, in)
	return 0
}

// benchGateway is a gateway running in a child process.
type benchGateway struct {
	url, authURL, apiKey string
}

// startBenchGateway re-executes the test binary as a gateway of the given
// kind (see serveBenchGateway) and stops it when tb ends: it closes the child's stdin, waits for it to exit,
// and kills it if it has not within 10 s. A child that does not announce
// its URLs within 30 s is killed too.
func startBenchGateway(tb testing.TB, kind string) benchGateway {
	tb.Helper()
	exe, err := os.Executable()
	require.NoError(tb, err)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), benchGatewayEnv+"="+kind)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(tb, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(tb, err)
	require.NoError(tb, cmd.Start())
	watchdog := time.AfterFunc(30*time.Second, func() { _ = cmd.Process.Kill() })
	tb.Cleanup(func() {
		watchdog.Stop()
		_ = stdin.Close()
		kill := time.AfterFunc(10*time.Second, func() { _ = cmd.Process.Kill() })
		defer kill.Stop()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	watchdog.Stop()
	require.NoError(tb, err, "the gateway process did not announce its URLs")
	f := strings.Fields(line)
	require.Len(tb, f, 3, "gateway process said %q", line)
	return benchGateway{url: f[0], authURL: f[1], apiKey: f[2]}
}

// client returns a client of the gateway, closed when tb ends.
func (g benchGateway) client(tb testing.TB) *Client {
	tb.Helper()
	c, err := New(WithBaseURL(g.url), WithAuthURL(g.authURL), WithAPIKey(g.apiKey))
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// TestBenchGatewayProcess runs the child-process gateway once: a plain and
// a credentialed check both pass, the credentialed one with a proof the
// gateway verified (a check with a bad proof would be refused), and the
// child is gone when the test ends.
func TestBenchGatewayProcess(t *testing.T) {
	gw := startBenchGateway(t, "fake")
	ctx := context.Background()
	plain := gw.client(t)
	cred := gw.client(t)
	p := enrolBenchAgent(t, cred)
	for _, c := range []*Client{plain, cred, cred} {
		r, err := c.Actions.Check(ctx, p)
		require.NoError(t, err)
		require.True(t, r.Allowed)
	}
	// A tampered proof is refused: the gateway really verifies them.
	ac := cred.creds.Load()
	mem := ac.dpop.mem
	ac.dpop.mem = nil
	ac.dpop.sign = func(ctx context.Context, data []byte) ([]byte, error) {
		sig, err := mem.Sign(ctx, ac.dpop.agentID, data)
		if err == nil {
			sig[0] ^= 1
		}
		return sig, err
	}
	_, err := cred.Actions.Check(ctx, p)
	var ae *AuthenticationError
	require.ErrorAs(t, err, &ae)
}
