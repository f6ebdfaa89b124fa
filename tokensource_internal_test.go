package agenttrust

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/agenttrustid/agenttrust-go/internal/allocs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newSourceRig(t testing.TB, p TokenIssueParams) (*TokenSource, *recServer, *fakeClock, *Client) {
	t.Helper()
	clk := newFakeClock(t0)
	is := &issuer{clock: clk, ttl: 5 * time.Minute}
	srv := newRecServer(t, is.handle)
	c := newTestClient(t, srv.URL, withNow(clk.Now))
	src, err := c.Tokens.NewSource(p)
	require.NoError(t, err)
	return src, srv, clk, c
}

func sourceToken(t *testing.T, src *TokenSource) string {
	t.Helper()
	tok, err := src.Token(ctxT(t))
	require.NoError(t, err)
	return tok
}

// The source reuses its token while more than 30 s of it remain, issues a
// new one after, and follows the cache's evictions.
func TestTokenSourceRefresh(t *testing.T) {
	scopes := []string{"b", "a"}
	src, srv, clk, c := newSourceRig(t, TokenIssueParams{AgentID: "a1", Scopes: scopes})
	first := sourceToken(t, src)
	scopes[0] = "changed" // the source keeps its own copy
	clk.Advance(5*time.Minute - 31*time.Second)
	tok := sourceToken(t, src)
	require.Equal(t, first, tok, "with 31 s left: %d issued", srv.count())
	require.Equal(t, 1, srv.count(), "with 31 s left: %d issued", srv.count())
	clk.Advance(time.Second)
	second := sourceToken(t, src)
	require.NotEqual(t, first, second, "with 30 s left: token reused (%d issued)", srv.count())
	require.Equal(t, 2, srv.count(), "with 30 s left: token reused (%d issued)", srv.count())
	sent := decodeMap(t, srv.requests()[1].Body)["scopes"]
	require.Len(t, sent.([]any), 2, "scopes sent: %v", sent)
	assert.Equal(t, "b", sent.([]any)[0], "scopes sent: %v", sent)
	c.Tokens.ClearCache()
	tok = sourceToken(t, src)
	assert.NotEqual(t, second, tok, "ClearCache not followed (%d issued)", srv.count())
	assert.Equal(t, 3, srv.count(), "ClearCache not followed (%d issued)", srv.count())
	require.NoError(t, c.Tokens.Revoke(ctxT(t), sourceToken(t, src), ""))
	sourceToken(t, src)
	assert.Equal(t, 5, srv.count(), "Revoke not followed: 3 issues, a revoke, an issue")
}

// A cache hit allocates nothing, for the token and for the bearer value.
func TestTokenSourceHitAllocs(t *testing.T) {
	src, _, _, _ := newSourceRig(t, TokenIssueParams{AgentID: "agent-123", Scopes: []string{"write", "read"}, Target: "svc"})
	ctx := context.Background()
	sourceToken(t, src)
	n := allocs.Least(200, nil, func() { _, _ = src.Token(ctx) })
	assert.Equal(t, 0.0, n, "Token on a hit: %v allocations", n)
	n = allocs.Least(200, nil, func() { _, _ = src.bearer(ctx) })
	assert.Equal(t, 0.0, n, "bearer on a hit: %v allocations", n)
}

// The transport allocates no more than cloning the request and setting the
// header would, and leaves the caller's request as it was.
func TestTokenTransportAllocs(t *testing.T) {
	src, _, _, _ := newSourceRig(t, TokenIssueParams{AgentID: "agent-123", Scopes: []string{"write", "read"}})
	ctx := context.Background()
	bearer := "Bearer " + sourceToken(t, src)
	var sent *http.Request
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent = r
		return &http.Response{StatusCode: http.StatusOK}, nil
	})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://tool.example/call", http.NoBody)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	baseline := allocs.Least(100, nil, func() {
		r := req.Clone(req.Context())
		r.Header.Set("Authorization", bearer)
		_, _ = base.RoundTrip(r)
	})
	tr := src.Transport(base)
	got := allocs.Least(100, nil, func() { _, _ = tr.RoundTrip(req) })
	assert.LessOrEqual(t, got, baseline, "the transport allocates %v per request, a clone and a header set %v", got, baseline)
	assert.NotSame(t, req, sent, "the caller's request was sent, not a clone")
	assert.Equal(t, bearer, sent.Header.Get("Authorization"), "sent headers %v", sent.Header)
	assert.Equal(t, "application/json", sent.Header.Get("Accept"), "sent headers %v", sent.Header)
	require.Len(t, req.Header, 2, "the caller's request was modified: %v", req.Header)
	assert.Empty(t, req.Header.Get("Authorization"), "the caller's request was modified: %v", req.Header)
}

// BenchmarkTokenSourceHit compares the bearer lookup of a source with a
// Tokens.Issue hit for the same agent, target and scopes; run with
// -count=6 and compare the two with benchstat.
func BenchmarkTokenSourceHit(b *testing.B) {
	p := TokenIssueParams{AgentID: "agent-123", Scopes: []string{"write", "read"}, Target: "svc"}
	src, srv, _, c := newSourceRig(b, p)
	ctx := context.Background()
	_, err := src.Token(ctx)
	require.NoError(b, err)
	b.Run("issue", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			_, err := c.Tokens.Issue(ctx, p)
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("source", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			_, err := src.Token(ctx)
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	require.Equal(b, 1, srv.count(), "%d issue requests", srv.count())
}

// okTransport answers every request with one shared response, so that a
// benchmark measures only what wraps it.
type okTransport struct{ resp *http.Response }

func (t okTransport) RoundTrip(*http.Request) (*http.Response, error) { return t.resp, nil }

// BenchmarkTokenTransport compares the token transport with the least a
// RoundTripper adding a header must do: clone the request and set the
// header (to a ready-made value, so the baseline does not even build it).
func BenchmarkTokenTransport(b *testing.B) {
	src, _, _, _ := newSourceRig(b, TokenIssueParams{AgentID: "agent-123", Scopes: []string{"write", "read"}, Target: "svc"})
	ctx := context.Background()
	bearer, err := src.bearer(ctx)
	require.NoError(b, err)
	base := okTransport{resp: &http.Response{StatusCode: http.StatusOK}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://tool.example/call", http.NoBody)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "agent/1.0")
	b.Run("clone+set", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			r := req.Clone(req.Context())
			r.Header.Set("Authorization", bearer)
			_, err := base.RoundTrip(r)
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	tr := src.Transport(base)
	b.Run("transport", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			_, err := tr.RoundTrip(req)
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
