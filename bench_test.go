package agenttrust

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	"github.com/agenttrustid/agenttrust-go/internal/allocs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const checkReply = `{"allowed":true,"check_id":"chk-1","confidence":0.98,"guard_tier":"fast","latency_ms":3,"reason":"read-only tool","elevation_required":false}`

// benchServer answers every check with checkReply and counts new connections.
func benchServer(tb testing.TB) (*httptest.Server, *atomic.Int64) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, checkReply)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	tb.Cleanup(srv.Close)
	return srv, &conns
}

// reportCPU reports the process CPU time per op since start (client and the
// in-process server together) as cpu-ns/op: on a machine shared with other
// work it is steadier than wall time.
func reportCPU(b *testing.B, start time.Duration, ok bool) {
	if end, ok2 := processCPU(); ok && ok2 {
		b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
	}
}

var benchParams = ActionCheckParams{AgentID: "agent-123", ToolName: "read_file", ToolInputSummary: "path=/etc/hosts", SessionID: "sess-1"}

func BenchmarkCheck(b *testing.B) {
	srv, _ := benchServer(b)
	c := newTestClient(b, srv.URL)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	cpu, ok := processCPU()
	for i := 0; i < b.N; i++ {
		r, err := c.Actions.Check(ctx, benchParams)
		if err != nil {
			b.Fatal(err)
		}
		if !r.Allowed {
			b.Fatalf("%v %v", r, err)
		}
	}
	reportCPU(b, cpu, ok)
}

// BenchmarkCheckOption is BenchmarkCheck with one request option, made at
// each call as a caller would, against a server that allocates nothing per
// request (rawAnswerServer): the allocations are the client's alone, and
// each option's cost is its allocs/op minus the "none" case's. (A net/http
// server spends 2 allocations of its own parsing one more header: see
// BenchmarkCheckBaselineHeader.)
func BenchmarkCheckOption(b *testing.B) {
	c := newTestClient(b, rawAnswerServer(b))
	ctx := context.Background()
	var meta Response
	for _, oc := range optionCases(&meta) {
		b.Run(oc.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu, ok := processCPU()
			for i := 0; i < b.N; i++ {
				r, err := checkWithOption(ctx, c, oc.opt)
				if err != nil {
					b.Fatal(err)
				}
				if !r.Allowed {
					b.Fatalf("%v %v", r, err)
				}
			}
			reportCPU(b, cpu, ok)
		})
	}
}

// optionCase is a request option as a caller writes it in the call, with
// the allocations it may add to a check (the first case has no option).
type optionCase struct {
	name  string
	opt   func() RequestOption // nil: no option
	extra float64
}

// optionCases are the request options whose cost is measured: a header
// costs the one value slice net/http's Header needs, a max-retries option
// the policy it changes, the others nothing. WithResponseInto fills meta.
func optionCases(meta *Response) []optionCase {
	return []optionCase{
		{name: "none"},
		{name: "header", opt: func() RequestOption { return WithRequestHeader("X-Tenant", "tenant-1") }, extra: 1},
		{name: "timeout", opt: func() RequestOption { return WithRequestTimeout(5 * time.Second) }},
		{name: "max-retries", opt: func() RequestOption { return WithRequestMaxRetries(1) }, extra: 1},
		{name: "until-deadline", opt: WithRequestRetryUntilDeadline},
		{name: "response-into", opt: func() RequestOption { return WithResponseInto(meta) }},
	}
}

// checkWithOption runs a check on c with opt's option (none when nil)
// written in the call, as a caller would write it.
func checkWithOption(ctx context.Context, c *Client, opt func() RequestOption) (*ActionCheckResult, error) {
	if opt == nil {
		return c.Actions.Check(ctx, benchParams)
	}
	return c.Actions.Check(ctx, benchParams, opt())
}

// rawAnswerServer is a loopback HTTP/1.1 server that answers every request
// with checkReply, reading each request with one reused buffer and writing
// one fixed response, so that it allocates nothing per request: a benchmark
// against it counts the client's allocations only. It understands just
// what the SDK sends: a header block and a Content-Length body.
func rawAnswerServer(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	reply := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(checkReply)) + "\r\n\r\n" + checkReply)
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	serve := func(conn net.Conn) {
		defer wg.Done()
		defer conn.Close()
		br := bufio.NewReaderSize(conn, 16<<10)
		for {
			n := 0
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(line) <= 2 { // the blank line ending the header block
					break
				}
				const cl = "content-length:"
				if len(line) > len(cl) && strings.EqualFold(string(line[:len(cl)]), cl) {
					for _, ch := range line[len(cl):] {
						if ch >= '0' && ch <= '9' {
							n = n*10 + int(ch-'0')
						}
					}
				}
			}
			if _, err := br.Discard(n); err != nil {
				return
			}
			if _, err := conn.Write(reply); err != nil {
				return
			}
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[conn] = true
			mu.Unlock()
			wg.Add(1)
			go serve(conn)
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for conn := range conns {
			conn.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "http://" + ln.Addr().String()
}

// BenchmarkCheckBaselineHeader is BenchmarkCheckBaseline with one more
// header: the floor of BenchmarkCheckOption/header.
func BenchmarkCheckBaselineHeader(b *testing.B) {
	srv, _ := benchServer(b)
	bc := newBaselineChecker(srv.URL)
	bc.header = []string{"tenant-1"}
	defer bc.close()
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := bc.check(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckBaseline is the same POST written by hand with net/http: the
// floor the SDK's overhead is measured against.
func BenchmarkCheckBaseline(b *testing.B) {
	srv, _ := benchServer(b)
	bc := newBaselineChecker(srv.URL)
	defer bc.close()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	cpu, ok := processCPU()
	for i := 0; i < b.N; i++ {
		if err := bc.check(ctx); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu, ok)
}

// baselineChecker is the hand-written net/http client of the baseline: the
// check a user would write without the SDK, on the same pool settings.
type baselineChecker struct {
	hc  *http.Client
	url string
	// header, when set, is one more header, set without allocating: what
	// net/http itself (client and server) spends on it.
	header []string
}

func newBaselineChecker(base string) *baselineChecker {
	return &baselineChecker{
		hc:  &http.Client{Transport: newPooledTransport(), Timeout: 30 * time.Second},
		url: base + "/api/v1/agenttrust/check",
	}
}

func (bc *baselineChecker) close() { bc.hc.CloseIdleConnections() }

type baselineBody struct {
	AgentID      string `json:"agent_id"`
	SessionID    string `json:"session_id"`
	ActionName   string `json:"action_name"`
	ActionSource string `json:"action_source"`
	InputSummary string `json:"action_input_summary"`
}

type baselineResult struct {
	Allowed           bool     `json:"allowed"`
	CheckID           string   `json:"check_id"`
	Confidence        *float64 `json:"confidence"`
	GuardTier         string   `json:"guard_tier"`
	LatencyMs         *int     `json:"latency_ms"`
	Reason            string   `json:"reason"`
	ElevationRequired bool     `json:"elevation_required"`
	ApprovalID        string   `json:"approval_id"`
}

func (bc *baselineChecker) check(ctx context.Context) error {
	buf, err := json.Marshal(baselineBody{benchParams.AgentID, benchParams.SessionID, benchParams.ToolName, "api", benchParams.ToolInputSummary})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, bc.url, bytes.NewReader(buf))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", testKey)
	if bc.header != nil {
		req.Header["X-Tenant"] = bc.header
	}
	resp, err := bc.hc.Do(req)
	if err != nil {
		return err
	}
	var r baselineResult
	err = json.NewDecoder(resp.Body).Decode(&r)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if !r.Allowed {
		return fmt.Errorf("not allowed: %+v", r)
	}
	return nil
}

// benchGoroutines is the concurrency of the parallel check benchmarks: an
// agent fleet sharing one client.
const benchGoroutines = 64

// runChecksParallel runs check from benchGoroutines goroutines whatever
// GOMAXPROCS is (run with -cpu 1,2), and reports the connections the server
// accepted. At -cpu 1 the run is CPU-bound, so ns/op is the CPU a check
// costs (client and in-process server together; the server's share is the
// same for every client measured).
func runChecksParallel(b *testing.B, conns *atomic.Int64, check func(context.Context) error) {
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((benchGoroutines + procs - 1) / procs)
	ctx := context.Background()
	conns.Store(0)
	b.ReportAllocs()
	b.ResetTimer()
	cpu, ok := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := check(ctx); !assert.NoError(b, err) {
				return
			}
		}
	})
	b.StopTimer()
	reportCPU(b, cpu, ok)
	b.ReportMetric(float64(conns.Load()), "conns")
}

// BenchmarkCheckParallel is Actions.Check from 64 goroutines sharing one
// client.
func BenchmarkCheckParallel(b *testing.B) {
	srv, conns := benchServer(b)
	c := newTestClient(b, srv.URL)
	runChecksParallel(b, conns, func(ctx context.Context) error {
		r, err := c.Actions.Check(ctx, benchParams)
		if err == nil && !r.Allowed {
			err = fmt.Errorf("not allowed: %+v", r)
		}
		return err
	})
}

// BenchmarkCheckBaselineParallel is the hand-written client from 64
// goroutines.
func BenchmarkCheckBaselineParallel(b *testing.B) {
	srv, conns := benchServer(b)
	bc := newBaselineChecker(srv.URL)
	defer bc.close()
	runChecksParallel(b, conns, bc.check)
}

// BenchServerURL starts the benchmark server for the external test package
// (the guard's benchmarks run against the very same server).
func BenchServerURL(tb testing.TB) string {
	srv, _ := benchServer(tb)
	return srv.URL
}

// ProcessCPU is processCPU for the external test package.
func ProcessCPU() (time.Duration, bool) { return processCPU() }

// ReportCPU is reportCPU for the external test package.
func ReportCPU(b *testing.B, start time.Duration, ok bool) { reportCPU(b, start, ok) }

// BenchParams are the check arguments every check benchmark sends.
var BenchParams = benchParams

// TestKey is the API key of the test clients, for the external test package.
const TestKey = testKey

func BenchmarkTokenCacheHit(b *testing.B) {
	srv := newRecServer(b, reply(200, `{"token":"at_bench","agent_id":"a1","scopes":["read","write"],"expires_at":"2099-01-01T00:00:00Z"}`))
	c := newTestClient(b, srv.URL)
	ctx := context.Background()
	p := TokenIssueParams{AgentID: "agent-123", Scopes: []string{"write", "read"}, Target: "svc"}
	_, err := c.Tokens.Issue(ctx, p)
	require.NoError(b, err)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, err := c.Tokens.Issue(ctx, p)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	require.Equal(b, 1, srv.count(), "%d issue requests", srv.count())
}

// BenchmarkTokenCopyFloor is the one piece of work a cache hit cannot skip:
// the copy it returns, plus a clock read. The hit's overhead
// over it is the key, the lock and the lookup.
func BenchmarkTokenCopyFloor(b *testing.B) {
	tok := &Token{Token: "at_bench", AgentID: "a1", Scopes: []string{"read", "write"}, ExpiresAt: time.Now().Add(time.Hour)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !(fresh(tok.ExpiresAt, time.Now())) {
			b.Fatalf("stale")
		}
		if copyToken(tok) == nil {
			b.Fatalf("stale")
		}
	}
}

// TestTokenCacheHitAllocs keeps the cache-hit path at one allocation (the
// returned copy) in every test run, not only when benchmarks run.
func TestTokenCacheHitAllocs(t *testing.T) {
	srv := newRecServer(t, reply(200, `{"token":"at_x","scopes":["read","write"],"expires_at":"2099-01-01T00:00:00Z"}`))
	c := newTestClient(t, srv.URL)
	ctx := context.Background()
	p := TokenIssueParams{AgentID: "agent-123", Scopes: []string{"write", "read"}, Target: "svc"}
	_, err := c.Tokens.Issue(ctx, p)
	require.NoError(t, err)
	n := allocs.Least(200, nil, func() { c.Tokens.Issue(ctx, p) })
	assert.LessOrEqual(t, n, 1.0, "cache hit allocates %v times, want at most 1", n)
}

// TestConcurrentChecksReuseConnections runs 64 goroutines checking for about
// 2 s and counts the connections the server accepted: the pool must not
// churn. With Go's default of 2 idle connections per host this opens
// thousands of connections; the SDK's pool keeps them all.
//
// The bound is loose (twice the goroutines): it counts every connection
// opened over the run, replacements included. The tight bound, at most one
// connection open per goroutine, is TestConcurrentChecksOpenAtMostOneConnectionEach.
func TestConcurrentChecksReuseConnections(t *testing.T) {
	dur := 2 * time.Second
	if testing.Short() {
		dur = 300 * time.Millisecond
	}
	const workers = 64
	srv, conns := benchServer(t)
	c := newTestClient(t, srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var wg sync.WaitGroup
	var calls, failures atomic.Int64
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				_, err := c.Actions.Check(context.Background(), benchParams)
				calls.Add(1)
				if err != nil {
					failures.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d checks by %d goroutines over %v on %d connections", calls.Load(), workers, dur, conns.Load())
	assert.EqualValues(t, 0, failures.Load(), "%d checks failed", failures.Load())
	assert.GreaterOrEqual(t, calls.Load(), int64(workers), "only %d checks", calls.Load())
	n := conns.Load()
	assert.LessOrEqual(t, n, int64(2*workers), "%d connections for %d goroutines: the pool churns", n, workers)
}

// TestCheckAllocsAtMostBaseline keeps Actions.Check at or below the
// hand-written net/http client's allocations against the same server (both
// counts include the in-process server's share, which is the same).
func TestCheckAllocsAtMostBaseline(t *testing.T) {
	srv, _ := benchServer(t)
	c := newTestClient(t, srv.URL)
	bc := newBaselineChecker(srv.URL)
	defer bc.close()
	ctx := context.Background()
	sdk := allocs.Least(300, nil, func() {
		_, err := c.Actions.Check(ctx, benchParams)
		require.NoError(t, err)
	})
	base := allocs.Least(300, nil, func() {
		require.NoError(t, bc.check(ctx))
	})
	t.Logf("allocs per check: SDK %v, hand-written %v", sdk, base)
	assert.LessOrEqual(t, sdk, base, "Actions.Check allocates %v times per check, the hand-written client %v", sdk, base)
}

// Benchmarks for agent identity. Compare within one run, e.g.
//
//	go test -run '^$' -bench 'Identity|DPoPMint|CredentialsHit' -benchmem -count 6
//
// BenchmarkIdentityCheck/{plain,credentialed} against a server that only
// answers (the SDK's own cost) and against the fake gateway that really
// verifies the token and the proof; BenchmarkIdentityPaired for the
// credentialed check's extra cost in signatures, with the server in this
// process or in another; BenchmarkDPoPMint against a bare ed25519.Sign of
// the same bytes; BenchmarkCredentialsHit with a cached token under 64
// goroutines.

// identityBenchServer answers challenges, WIMSE tokens (valid for a day)
// and checks without verifying anything.
func identityBenchServer(tb testing.TB) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(identityAnswer))
	tb.Cleanup(srv.Close)
	return srv
}

// identityAnswer is the handler of identityBenchServer.
func identityAnswer(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/json")
	switch {
	case strings.HasSuffix(r.URL.Path, "/challenge"):
		_, _ = io.WriteString(w, `{"nonce":"n-1","expires_at":"2099-01-01T00:00:00Z"}`)
	case r.URL.Path == "/api/v1/wimse/token":
		_, _ = io.WriteString(w, `{"token":"eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJl","expires_at":"2099-01-01T00:00:00Z"}`)
	default:
		_, _ = io.WriteString(w, checkReply)
	}
}

func credentialedClient(tb testing.TB, c *Client, agentID string, ks KeyStore, pubPEM string) {
	tb.Helper()
	ac, err := c.NewAgentCredentials(AgentCredentialsParams{AgentID: agentID, KeyStore: ks, PublicKeyPEM: pubPEM})
	require.NoError(tb, err)
	require.NoError(tb, c.UseAgentCredentials(ac))
	_, err = ac.Token(context.Background())
	require.NoError(tb, err)
}

// enrolBenchAgent registers an agent through c, its key kept in a new
// InMemoryKeyStore, installs the agent's credentials on c and returns the
// check parameters that name it.
func enrolBenchAgent(tb testing.TB, c *Client) ActionCheckParams {
	tb.Helper()
	ks := NewInMemoryKeyStore()
	a, err := c.Agents.Create(context.Background(), AgentCreateParams{Name: "bench", KeyStore: ks})
	require.NoError(tb, err)
	credentialedClient(tb, c, a.ID, ks, a.PublicKey)
	p := benchParams
	p.AgentID = a.ID
	return p
}

func BenchmarkIdentityCheck(b *testing.B) {
	run := func(b *testing.B, c *Client, p ActionCheckParams) {
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			r, err := c.Actions.Check(ctx, p)
			if err != nil {
				b.Fatal(err)
			}
			if !r.Allowed {
				b.Fatalf("%v %v", r, err)
			}
		}
	}
	ks := NewInMemoryKeyStore()
	require.NoError(b, ks.Store(context.Background(), "agent-123", vecPrivPEM))
	b.Run("server=answer/plain", func(b *testing.B) {
		srv := identityBenchServer(b)
		run(b, newTestClient(b, srv.URL), benchParams)
	})
	b.Run("server=answer/credentialed", func(b *testing.B) {
		srv := identityBenchServer(b)
		c := newTestClient(b, srv.URL)
		credentialedClient(b, c, "agent-123", ks, vecPubPEM)
		run(b, c, benchParams)
	})
	// The fake verifies the WIMSE token and the DPoP proof on every
	// credentialed check, so its figures include the server's work.
	fake := func(b *testing.B, creds bool) {
		srv := agenttrusttest.NewTestServer(b)
		c, err := New(WithBaseURL(srv.URL()), WithAuthURL(srv.AuthURL()), WithAPIKey(srv.APIKey()))
		require.NoError(b, err)
		fks := NewInMemoryKeyStore()
		a, err := c.Agents.Create(context.Background(), AgentCreateParams{Name: "bench", KeyStore: fks})
		require.NoError(b, err)
		if creds {
			srv.SetSecuritySettings(agenttrusttest.SecuritySettings{RequireProofOfPossession: true, RequireSenderConstrainedTokens: true})
			credentialedClient(b, c, a.ID, fks, a.PublicKey)
		}
		p := benchParams
		p.AgentID = a.ID
		run(b, c, p)
	}
	b.Run("server=fake/plain", func(b *testing.B) { fake(b, false) })
	b.Run("server=fake/credentialed", func(b *testing.B) { fake(b, true) })
	b.Run("sign", func(b *testing.B) { benchSign(b) })
}

// benchSign is one Ed25519 signature over bytes the size of a DPoP
// signing input: the reference for the credentialed overhead.
func benchSign(b *testing.B) {
	priv := vecKey(b)
	k, err := NewDPoPKey(vecPrivPEM)
	require.NoError(b, err)
	proof, err := k.Proof(context.Background(), "POST", "http://127.0.0.1:8082/api/v1/agenttrust/check", "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJl")
	require.NoError(b, err)
	msg := []byte(proof[:strings.LastIndexByte(proof, '.')])
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = ed25519.Sign(priv, msg)
	}
}

func BenchmarkDPoPMint(b *testing.B) {
	ctx := context.Background()
	const u, tok = "http://127.0.0.1:8082/api/v1/agenttrust/check", "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJl"
	b.Run("sign", benchSign)
	b.Run("key", func(b *testing.B) {
		k, err := NewDPoPKey(vecPrivPEM)
		require.NoError(b, err)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			_, err := k.Proof(ctx, "POST", u, tok)
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("keystore", func(b *testing.B) {
		ks := NewInMemoryKeyStore()
		require.NoError(b, ks.Store(ctx, "a1", vecPrivPEM))
		k, err := NewDPoPKeyWithKeyStore(ks, "a1", vecPubPEM)
		require.NoError(b, err)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			_, err := k.Proof(ctx, "POST", u, tok)
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pem", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			_, err := MintDPoPProof(vecPrivPEM, "POST", u, tok)
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCredentialsHit takes the cached token from 64 goroutines: an
// atomic load and a clock read, no network and no lock.
func BenchmarkCredentialsHit(b *testing.B) {
	srv := identityBenchServer(b)
	c := newTestClient(b, srv.URL)
	ks := NewInMemoryKeyStore()
	require.NoError(b, ks.Store(context.Background(), "agent-123", vecPrivPEM))
	credentialedClient(b, c, "agent-123", ks, vecPubPEM)
	ac := c.creds.Load()
	ctx := context.Background()
	par := (64 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0)
	// baseline: the floor of any lock-free cache, an atomic load and a
	// clock read.
	b.Run("baseline", func(b *testing.B) {
		var p atomic.Pointer[credToken]
		p.Store(&credToken{token: "t", refreshAt: time.Now().Add(time.Hour)})
		b.SetParallelism(par)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if t := p.Load(); !time.Now().Before(t.refreshAt) {
					b.Error("expired")
					return
				}
			}
		})
	})
	b.Run("token", func(b *testing.B) {
		issued := ac.cur.Load()
		b.SetParallelism(par)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := ac.Token(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		})
		assert.Same(b, issued, ac.cur.Load(), "the token was refreshed during the benchmark")
	})
}

// answerInMemory answers a request like identityBenchServer, without a
// network.
func answerInMemory(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	identityAnswer(rec, r)
	if r.Body != nil {
		_ = r.Body.Close()
	}
	return rec.Result(), nil
}

// timedKeyStore times the signatures of the key store it wraps.
type timedKeyStore struct {
	KeyStore
	ns, signs atomic.Int64
}

func (s *timedKeyStore) Sign(ctx context.Context, agentID string, data []byte) ([]byte, error) {
	t0 := time.Now()
	sig, err := s.KeyStore.Sign(ctx, agentID, data)
	s.ns.Add(int64(time.Since(t0)))
	s.signs.Add(1)
	return sig, err
}

// BenchmarkIdentityPaired measures, in the same iteration and so under the
// same load, a bare Ed25519 signature, a plain check, a credentialed check
// and a DPoP mint, and reports the ratios: extra/sign is (credentialed -
// plain) / sign, the target being at most 1.1; mint/sign is the DPoP mint
// against the bare signature, the target being at most 1.5. Pairing makes
// the ratios meaningful on a loaded machine where separate runs are not.
//
// server=none has no server: a round tripper answers in memory, so its
// extra/sign is the SDK's own work for a credentialed check, the signature
// included, without net/http's transport or the kernel.
// server=answer and server=fake time the wall clock with the server in
// this process, so their figures include the server's work (the fake's
// verification of the token and the proof above all).
// server=answer-process and server=fake-process run the gateway in a
// child process and measure this process's CPU time instead (pairedCPU):
// extra-cpu/sign is the client's own extra cost. Run them with -cpu 1 for
// exact CPU accounting:
//
//	go test -run '^$' -bench 'IdentityPaired/server=.*process' -cpu 1 -count 6
func BenchmarkIdentityPaired(b *testing.B) {
	ctx := context.Background()
	priv := vecKey(b)
	dk, err := NewDPoPKey(vecPrivPEM)
	require.NoError(b, err)
	const u, tok = "http://127.0.0.1:8082/api/v1/agenttrust/check", "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJl"
	proof, err := dk.Proof(ctx, "POST", u, tok)
	require.NoError(b, err)
	msg := []byte(proof[:strings.LastIndexByte(proof, '.')])

	paired := func(b *testing.B, plain, cred *Client, p ActionCheckParams, ts *timedKeyStore) {
		check := func(c *Client) time.Duration {
			t0 := time.Now()
			r, err := c.Actions.Check(ctx, p)
			d := time.Since(t0)
			if err != nil {
				b.Fatal(err)
			}
			if !r.Allowed {
				b.Fatal("check refused:", r.Reason)
			}
			return d
		}
		var dSign, dPlain, dCred, dMint time.Duration
		b.ReportAllocs()
		b.ResetTimer()
		sign := func() time.Duration {
			t0 := time.Now()
			_ = ed25519.Sign(priv, msg)
			return time.Since(t0)
		}
		mint := func() time.Duration {
			t0 := time.Now()
			_, err := dk.Proof(ctx, "POST", u, tok)
			d := time.Since(t0)
			if err != nil {
				b.Fatal(err)
			}
			return d
		}
		// Each pair runs back to back, in alternating order, so that
		// neither side always runs with colder caches.
		for i := 0; i < b.N; i++ {
			if i%2 == 0 {
				dPlain += check(plain)
				dCred += check(cred)
				dSign += sign()
				dMint += mint()
			} else {
				dCred += check(cred)
				dPlain += check(plain)
				dMint += mint()
				dSign += sign()
			}
		}
		n := float64(b.N)
		b.ReportMetric(float64(dSign)/n, "sign-ns")
		b.ReportMetric(float64(dMint)/n, "mint-ns")
		b.ReportMetric(float64(dPlain)/n, "plain-ns")
		b.ReportMetric(float64(dCred)/n, "cred-ns")
		b.ReportMetric(float64(dCred-dPlain)/float64(dSign), "extra/sign")
		b.ReportMetric(float64(dMint)/float64(dSign), "mint/sign")
		if k := ts.signs.Load(); k > 0 {
			// The same signature, timed where it runs: inside the
			// credentialed check, between network calls, with colder
			// caches than the bare one above.
			inPath := float64(ts.ns.Load()) / float64(k)
			b.ReportMetric(inPath, "inpath-sign-ns")
			b.ReportMetric(float64(dCred-dPlain)/n/inPath, "extra/inpath-sign")
		}
	}
	// No server at all: a round tripper answers in memory, so that the
	// figures are the SDK's own work, without net/http's transport and the
	// kernel. The key store is an InMemoryKeyStore, as an agent's would be.
	b.Run("server=none", func(b *testing.B) {
		hc := &http.Client{Transport: roundTripFunc(answerInMemory)}
		ks := NewInMemoryKeyStore()
		require.NoError(b, ks.Store(ctx, "agent-123", vecPrivPEM))
		plain := newTestClient(b, "http://gateway.invalid", WithHTTPClient(hc))
		cred := newTestClient(b, "http://gateway.invalid", WithHTTPClient(hc))
		credentialedClient(b, cred, "agent-123", ks, vecPubPEM)
		paired(b, plain, cred, benchParams, &timedKeyStore{})
	})
	// The key store is timed, so it is not an InMemoryKeyStore: its proofs
	// take the general path (a copy of the signing input, the store's own
	// signature slice).
	b.Run("server=answer", func(b *testing.B) {
		srv := identityBenchServer(b)
		ks := &timedKeyStore{KeyStore: NewInMemoryKeyStore()}
		require.NoError(b, ks.Store(ctx, "agent-123", vecPrivPEM))
		cred := newTestClient(b, srv.URL)
		credentialedClient(b, cred, "agent-123", ks, vecPubPEM)
		ks.ns.Store(0)
		ks.signs.Store(0)
		paired(b, newTestClient(b, srv.URL), cred, benchParams, ks)
	})
	// The fake verifies the token and the proof of every credentialed
	// check it receives (the settings stay off so that the plain client
	// is served too): its cred-ns includes the server's two verifications.
	b.Run("server=fake", func(b *testing.B) {
		srv := agenttrusttest.NewTestServer(b)
		opts := []Option{WithBaseURL(srv.URL()), WithAuthURL(srv.AuthURL()), WithAPIKey(srv.APIKey())}
		plain, err := New(opts...)
		require.NoError(b, err)
		cred, err := New(opts...)
		require.NoError(b, err)
		paired(b, plain, cred, enrolBenchAgent(b, cred), &timedKeyStore{})
		n := len(srv.DPoPProofs())
		require.NotEqual(b, 0, n, "the fake did not accept the proofs")
		require.True(b, srv.DPoPProofs()[n-1].Accepted, "the fake did not accept the proofs")
	})
	// The client's own cost: the gateway runs in a process of its own and
	// this process's CPU time is measured, not the wall clock. The fake
	// verifies every token and proof it receives, in its own CPU time, so
	// that a credentialed check waits longer for its answer than a plain
	// one; the answering server makes both wait alike. One gateway process
	// serves every round of a sub-benchmark.
	outer := b
	for _, kind := range []string{"answer", "fake"} {
		var (
			gw    *benchGateway
			agent = &Agent{ID: "agent-123", PublicKey: vecPubPEM}
			ks    = NewInMemoryKeyStore()
		)
		b.Run("server="+kind+"-process", func(b *testing.B) {
			if _, ok := processCPU(); !ok {
				b.Skip("process CPU time is not measured on this platform")
			}
			if gw == nil {
				g := startBenchGateway(outer, kind)
				gw = &g
				if kind == "fake" {
					a, err := gw.client(b).Agents.Create(ctx, AgentCreateParams{Name: "bench", KeyStore: ks})
					require.NoError(b, err)
					agent = a
				} else {
					require.NoError(b, ks.Store(ctx, agent.ID, vecPrivPEM))
				}
			}
			plain, cred := gw.client(b), gw.client(b)
			credentialedClient(b, cred, agent.ID, ks, agent.PublicKey)
			p := benchParams
			p.AgentID = agent.ID
			pairedCPU(b, plain, cred, p, func() { _ = ed25519.Sign(priv, msg) })
		})
	}
}

// pairedCPU measures this process's CPU time in alternating blocks of 16
// operations (the order reversed every other block): plain checks, plain
// checks each followed by sign(), credentialed checks, signatures back to
// back, and plain checks carrying two headers as long as the credentials'.
// Blocks keep the clock reads (a system call each) out of the figures;
// alternation spreads the work of other threads (GC, the connections'
// loops) over all of them.
//
// sign-cpu-ns is a signature as it costs after a check (the second kind
// of block less the first): the CPU caches then hold the HTTP work, not
// the signing tables. warm-sign-cpu-ns is a signature in a loop of them.
// extra-cpu/sign is (credentialed - plain) / sign-cpu-ns, the credentialed
// check's extra cost in signatures; extra-cpu/warm-sign divides by the
// warm signature instead.
//
// The part of each check's CPU time spent between the request written
// and the first byte of the answer is the runtime's own work while the
// process waits for the gateway; it grows with the gateway's latency, not
// with the SDK's work. plain-wait-cpu-ns and cred-wait-cpu-ns report it and
// extra-busy-cpu/sign leaves it out. That extra busy time comes in two
// parts: headers-busy-cpu/sign, what sending the credentials' two headers
// costs (the fifth kind of block less the first), and mint-busy-cpu/sign,
// the rest: the signature as it runs inside the check, the token lookup
// and the rest of the mint. With -cpu 1 the CPU times read at
// those two points are exact; with more, the time of threads running at
// that moment on other cores is counted a little late.
func pairedCPU(b *testing.B, plain, cred *Client, p ActionCheckParams, sign func()) {
	const block = 16
	var n int
	var fail error
	var wrote, wait atomic.Int64 // written by the connections' goroutines
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) {
			t, _ := processCPU()
			wrote.Store(int64(t))
		},
		GotFirstResponseByte: func() {
			t, _ := processCPU()
			wait.Add(int64(t) - wrote.Load())
		},
	})
	check := func(c *Client) {
		r, err := c.Actions.Check(ctx, p)
		if err == nil && !r.Allowed {
			err = fmt.Errorf("check refused: %s", r.Reason)
		}
		if err != nil && fail == nil {
			fail = err
		}
	}
	// A plain check that carries two headers as long as the credentialed
	// check's Authorization and DPoP, set by a per-attempt hook like
	// theirs: what the credentials' bytes cost to send, without minting.
	hdr := credentialHeadersLike(b, cred)
	body := actionCheckBody{AgentID: p.AgentID, ActionName: p.ToolName, ActionSource: "api",
		InputSummary: p.ToolInputSummary, ActionEffect: p.ActionEffect}
	hdrCheck := func() {
		r := &request{method: http.MethodPost, base: baseAuth, path: "/api/v1/agenttrust/check",
			rawBody: body.appendJSON(nil), idempotent: true, attempt: hdr}
		res, err := plain.Actions.check(ctx, r, nil)
		if err == nil && !res.Allowed {
			err = fmt.Errorf("check refused: %s", res.Reason)
		}
		if err != nil && fail == nil {
			fail = err
		}
	}
	kinds := []struct {
		run         func()
		total, wait time.Duration
	}{
		{run: func() { check(plain) }},
		{run: func() { check(plain); sign() }},
		{run: func() { check(cred) }},
		{run: sign},
		{run: hdrCheck},
	}
	b.ReportAllocs()
	b.ResetTimer()
	for done, k := 0, 0; done < b.N; done, k = done+n, k+1 {
		n = min(block, b.N-done)
		for i := range kinds {
			if k%2 == 1 {
				i = len(kinds) - 1 - i
			}
			kd := &kinds[i]
			wait.Store(0)
			t0, _ := processCPU()
			for j := 0; j < n; j++ {
				kd.run()
			}
			t1, _ := processCPU()
			kd.total += t1 - t0
			kd.wait += time.Duration(wait.Load())
		}
		if fail != nil {
			b.Fatal(fail)
		}
	}
	b.StopTimer()
	f := float64(b.N)
	cPlain, cPlainSign, cCred, cWarm := kinds[0].total, kinds[1].total, kinds[2].total, kinds[3].total
	wPlain, wPlainSign, wCred := kinds[0].wait, kinds[1].wait, kinds[2].wait
	cSign := cPlainSign - cPlain
	b.ReportMetric(float64(cSign)/f, "sign-cpu-ns")
	b.ReportMetric(float64(cWarm)/f, "warm-sign-cpu-ns")
	b.ReportMetric(float64(cPlain)/f, "plain-cpu-ns")
	b.ReportMetric(float64(cCred)/f, "cred-cpu-ns")
	b.ReportMetric(float64(wPlain)/f, "plain-wait-cpu-ns")
	b.ReportMetric(float64(wCred)/f, "cred-wait-cpu-ns")
	b.ReportMetric(float64(cCred-cPlain)/float64(cSign), "extra-cpu/sign")
	b.ReportMetric(float64(cCred-cPlain)/float64(cWarm), "extra-cpu/warm-sign")
	busySign := (cPlainSign - wPlainSign) - (cPlain - wPlain)
	b.ReportMetric(float64((cCred-wCred)-(cPlain-wPlain))/float64(busySign), "extra-busy-cpu/sign")
	// The extra busy time in two parts: sending the two headers, and the
	// rest (the signature as it runs in the check, the token lookup, the
	// rest of the mint).
	busyHdr := (kinds[4].total - kinds[4].wait) - (cPlain - wPlain)
	b.ReportMetric(float64(busyHdr)/float64(busySign), "headers-busy-cpu/sign")
	b.ReportMetric(float64((cCred-wCred)-(cPlain-wPlain)-busyHdr)/float64(busySign), "mint-busy-cpu/sign")
}

// credentialHeaders is a per-attempt hook that sets fixed values as long
// as a credentialed check's Authorization and DPoP, under names as long
// that no gateway reads: the fake would refuse a proof sent twice.
type credentialHeaders struct{ auth, dpop []string }

func (h *credentialHeaders) BeforeAttempt(_ context.Context, hd http.Header) error {
	hd["X-Bench-Auth1"], hd["X-Dp"] = h.auth, h.dpop
	return nil
}
func (*credentialHeaders) target(string, string) {}
func (*credentialHeaders) secrets() []string     { return nil }

// credentialHeadersLike returns fixed headers as long as those of c's
// credentialed checks: its cached token and a proof minted once.
func credentialHeadersLike(tb testing.TB, c *Client) *credentialHeaders {
	tb.Helper()
	ac := c.creds.Load()
	t := ac.cur.Load()
	require.NotNil(tb, t, "the credentials hold no token")
	proof, err := ac.dpop.mintATH(context.Background(), time.Now(), http.MethodPost,
		c.endpoints[baseAuth].url+"/api/v1/agenttrust/check", t.ath)
	require.NoError(tb, err)
	return &credentialHeaders{auth: t.bearer, dpop: []string{proof}}
}
