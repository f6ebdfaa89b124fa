package agenttrust

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenttrustid/agenttrust-go/internal/allocs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// proofClaims verifies a proof's signature and returns its claims.
func proofClaims(t testing.TB, proof string) map[string]any {
	t.Helper()
	_, p := splitProof(t, proof)
	var claims map[string]any
	require.NoError(t, json.Unmarshal(p, &claims), "payload %s", p)
	return claims
}

// verifiedClaims is proofClaims for any goroutine: it returns an error
// instead of failing the test.
func verifiedClaims(proof string) (map[string]any, error) {
	_, p, err := verifyProof(proof)
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	return claims, json.Unmarshal(p, &claims)
}

// athWant is the ath of token computed independently of the SDK.
func athWant(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// The ath of tokens hashed from a stack copy (up to 2 KiB) and of longer
// ones alike.
func TestDPoPATHOfEveryTokenLength(t *testing.T) {
	k, err := NewDPoPKey(vecPrivPEM)
	require.NoError(t, err)
	for _, n := range []int{1, 43, 2047, 2048, 2049, 10000} {
		tok := strings.Repeat("t", n-1) + "z"
		proof, err := k.Proof(context.Background(), "POST", "https://gw.example/check", tok)
		require.NoError(t, err)
		assert.Equal(t, athWant(tok), proofClaims(t, proof)["ath"], "token of %d bytes", n)
	}
}

// A payload longer than the stack buffer it starts in still carries the
// jti read for it, in its place.
func TestDPoPLongURLKeepsJTI(t *testing.T) {
	k, err := NewDPoPKey(vecPrivPEM)
	require.NoError(t, err)
	k.rand = fixedJTI()
	u := "https://gw.example/" + strings.Repeat("segment/", 200)
	proof, err := k.mint(context.Background(), vecTime, "POST", u+"?q=1", "tok")
	require.NoError(t, err)
	claims := proofClaims(t, proof)
	assert.Equal(t, "000102030405060708090a0b0c0d0e0f", claims["jti"])
	assert.Equal(t, u, claims["htu"])
	assert.Equal(t, athWant("tok"), claims["ath"])
}

// appendingKeyStore signs like the store it wraps, then appends to the
// data it was given, as a careless key store might.
type appendingKeyStore struct {
	KeyStore
	caps []bool // whether each data slice had spare capacity
}

func (s *appendingKeyStore) Sign(ctx context.Context, agentID string, data []byte) ([]byte, error) {
	sig, err := s.KeyStore.Sign(ctx, agentID, data)
	s.caps = append(s.caps, cap(data) > len(data))
	_ = append(data, "scribble scribble scribble scribble scribble scribble scribble scribble scribble"...)
	return sig, err
}

// The signer is handed the signing input without the buffer's spare
// capacity: a key store that appends to it cannot change the proof.
func TestDPoPSignerCannotWriteIntoProof(t *testing.T) {
	ctx := context.Background()
	mem := NewInMemoryKeyStore()
	require.NoError(t, mem.Store(ctx, "a1", vecPrivPEM))
	ks := &appendingKeyStore{KeyStore: mem}
	k, err := NewDPoPKeyWithKeyStore(ks, "a1", vecPubPEM)
	require.NoError(t, err)
	k.rand = fixedJTI()
	proof, err := k.mint(ctx, vecTime, "POST", "http://127.0.0.1:8082/api/v1/agenttrust/check?x=1#frag", "wimse.jwt.token")
	require.NoError(t, err)
	assert.Equal(t, vecDPoPProof, proof)
	assert.Equal(t, []bool{false}, ks.caps, "the signer saw spare capacity")
}

// A proof signed with a key held in memory (parsed from a PEM or in an
// InMemoryKeyStore) costs one allocation, its string: the signing input and
// the signature stay on the stack, and the ath of a token is hashed without
// allocating. Through any other key store it costs three: the signer's copy
// of the input, the signature the store returns and the string.
func TestDPoPProofAllocs(t *testing.T) {
	ctx := context.Background()
	const u, tok = "http://127.0.0.1:8082/api/v1/agenttrust/check", "header.payload.signature-of-a-wimse-token"
	mem := NewInMemoryKeyStore()
	require.NoError(t, mem.Store(ctx, "a1", vecPrivPEM))
	pemKey, err := NewDPoPKey(vecPrivPEM)
	require.NoError(t, err)
	memKey, err := NewDPoPKeyWithKeyStore(mem, "a1", vecPubPEM)
	require.NoError(t, err)
	otherKey, err := NewDPoPKeyWithKeyStore(struct{ KeyStore }{mem}, "a1", vecPubPEM)
	require.NoError(t, err)
	ath := appendATH(nil, tok)
	for _, c := range []struct {
		name string
		k    *DPoPKey
		max  float64
	}{{"pem", pemKey, 1}, {"in-memory store", memKey, 1}, {"other store", otherKey, 3}} {
		n := allocs.Least(100, nil, func() { _, _ = c.k.Proof(ctx, "POST", u, tok) })
		assert.LessOrEqual(t, n, c.max, "%s: %v allocations per proof", c.name, n)
		n = allocs.Least(100, nil, func() { _, _ = c.k.mintATH(ctx, vecTime, "POST", u, ath) })
		assert.LessOrEqual(t, n, c.max, "%s: %v allocations per proof with a cached ath", c.name, n)
	}
}

// The credentials compute a token's ath once, when they obtain it: after a
// refresh, proofs carry the new token's hash, and the fake (which checks
// ath against the token it receives) accepts them.
func TestCredentialsProofCarriesCurrentTokenATH(t *testing.T) {
	e := newIdentityEnv(t)
	athOfLastCheck := func() (ath, token string) {
		t.Helper()
		checks := e.checkRequests()
		require.NotEmpty(t, checks)
		last := checks[len(checks)-1]
		token = strings.TrimPrefix(last.Header.Get("Authorization"), "Bearer ")
		a, _ := proofClaims(t, last.Header.Get("DPoP"))["ath"].(string)
		return a, token
	}
	_, err := e.check(ctxT(t))
	require.NoError(t, err)
	ath1, tok1 := athOfLastCheck()
	assert.Equal(t, athWant(tok1), ath1)
	_, err = e.check(ctxT(t))
	require.NoError(t, err)
	again, _ := athOfLastCheck()
	assert.Equal(t, ath1, again, "the same token, the same ath")

	toks := e.srv.WIMSETokens()
	require.Len(t, toks, 1)
	e.srv.Advance(toks[0].ExpiresAt.Sub(e.srv.Now()) - 30*time.Second)
	res, err := e.check(ctxT(t))
	require.NoError(t, err)
	require.True(t, res.Allowed)
	require.Len(t, e.srv.WIMSETokens(), 2, "the token was not refreshed")
	ath2, tok2 := athOfLastCheck()
	require.NotEqual(t, tok1, tok2)
	assert.Equal(t, athWant(tok2), ath2, "the proof after the refresh carries the new token's hash")
	assert.NotEqual(t, ath1, ath2)
	assert.Empty(t, e.srv.IdentityRejections())
}

// A credentialed check allocates little more than a plain one against the
// same server (10 more today; 18, then 14, before the proof, the hook's
// headers and its secrets were trimmed): the proof's string, the call, the
// attempt's header map and the server's share of reading two more headers.
func TestCredentialedCheckAllocs(t *testing.T) {
	srv := identityBenchServer(t)
	ctx := context.Background()
	ks := NewInMemoryKeyStore()
	require.NoError(t, ks.Store(ctx, "agent-123", vecPrivPEM))
	plain := newTestClient(t, srv.URL)
	cred := newTestClient(t, srv.URL)
	credentialedClient(t, cred, "agent-123", ks, vecPubPEM)
	check := func(c *Client) func() {
		return func() {
			r, err := c.Actions.Check(ctx, benchParams)
			if err != nil || !r.Allowed {
				t.Errorf("check: %v %v", r, err)
			}
		}
	}
	np := allocs.Least(200, nil, check(plain))
	nc := allocs.Least(200, nil, check(cred))
	t.Logf("allocations per check: plain %v, credentialed %v", np, nc)
	assert.LessOrEqual(t, nc-np, 12.0, "a credentialed check allocates %v times more than a plain one", nc-np)
}

// slowKeyStore moves a test clock on by step at every signature, as a
// slow refresh would.
type slowKeyStore struct {
	KeyStore
	clock *atomic.Int64 // Unix seconds
	step  int64
}

func (s *slowKeyStore) Sign(ctx context.Context, agentID string, data []byte) ([]byte, error) {
	s.clock.Add(s.step)
	return s.KeyStore.Sign(ctx, agentID, data)
}

// A check reads the clock once for the cache and the proof's iat; when it
// had to refresh the token first, the iat is read again after the refresh,
// not left as old as the refresh was long.
func TestCredentialedProofIATAfterRefresh(t *testing.T) {
	var proofs []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.Header.Get("DPoP"); p != "" {
			mu.Lock()
			proofs = append(proofs, p)
			mu.Unlock()
		}
		identityAnswer(w, r)
	}))
	t.Cleanup(srv.Close)
	var clock atomic.Int64
	clock.Store(1767225600)
	now := func() time.Time { return time.Unix(clock.Load(), 0) }
	ctx := context.Background()
	mem := NewInMemoryKeyStore()
	require.NoError(t, mem.Store(ctx, "agent-123", vecPrivPEM))
	ks := &slowKeyStore{KeyStore: mem, clock: &clock, step: 30}
	c := newTestClient(t, srv.URL, withNow(now))
	ac, err := c.NewAgentCredentials(AgentCredentialsParams{AgentID: "agent-123", KeyStore: ks, PublicKeyPEM: vecPubPEM})
	require.NoError(t, err)
	require.NoError(t, c.UseAgentCredentials(ac))

	// The first check refreshes: the proof of possession's signature
	// moves the clock 30 s on before the DPoP proof is minted.
	_, err = c.Actions.Check(ctx, benchParams)
	require.NoError(t, err)
	// The second uses the cached token: its iat is the clock as the check
	// starts (the DPoP signature moves the clock on after).
	before := clock.Load()
	_, err = c.Actions.Check(ctx, benchParams)
	require.NoError(t, err)
	require.Len(t, proofs, 2)
	assert.EqualValues(t, 1767225600+30, proofClaims(t, proofs[0])["iat"], "the iat predates the refresh")
	assert.EqualValues(t, before, proofClaims(t, proofs[1])["iat"])
}

// Proofs for different methods and URLs, minted in turn and concurrently,
// each carry their own htm and htu: the start of the proofs kept for the
// last URL is never used for another. A URL that shares the kept one's
// prefix, or differs only in a query, is no exception.
func TestDPoPProofsForSeveralURLs(t *testing.T) {
	k, err := NewDPoPKey(vecPrivPEM)
	require.NoError(t, err)
	ctx := context.Background()
	reqs := []struct{ method, url, htu string }{
		{"POST", "http://127.0.0.1:8082/api/v1/agenttrust/check", "http://127.0.0.1:8082/api/v1/agenttrust/check"},
		{"GET", "http://127.0.0.1:8082/api/v1/agenttrust/check", "http://127.0.0.1:8082/api/v1/agenttrust/check"},
		{"POST", "http://127.0.0.1:8082/api/v1/agenttrust/check2", "http://127.0.0.1:8082/api/v1/agenttrust/check2"},
		{"POST", "http://127.0.0.1:8082/api/v1/agenttrust/check?a=1", "http://127.0.0.1:8082/api/v1/agenttrust/check"},
		{"post", "https://gw.example/x#f", "https://gw.example/x"},
	}
	check := func(i int, tok string) error {
		r := reqs[i%len(reqs)]
		proof, err := k.Proof(ctx, r.method, r.url, tok)
		if err != nil {
			return err
		}
		claims, err := verifiedClaims(proof)
		if err != nil {
			return err
		}
		if claims["htm"] != r.method || claims["htu"] != r.htu || claims["ath"] != athWant(tok) {
			return fmt.Errorf("request %d: claims %v", i%len(reqs), claims)
		}
		return nil
	}
	for i := 0; i < 3*len(reqs); i++ {
		require.NoError(t, check(i, "tok"))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8*20)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				if err := check(g+i, "tok-"+strconv.Itoa(g)); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// Invalid requests fail whatever was minted before.
	_, err = k.Proof(ctx, "", reqs[0].url, "")
	var ve *ValidationError
	assert.ErrorAs(t, err, &ve)
	_, err = k.Proof(ctx, "POST", "/api/v1/agenttrust/check", "")
	assert.ErrorAs(t, err, &ve)
}

// Every proof gets a jti of its own, across keys and goroutines and
// across the refills of the random bytes they are cut from (32 jtis per
// refill): 8 goroutines on two keys mint 1,000 proofs, and no jti repeats
// or is all zeros.
func TestDPoPJTIsUnique(t *testing.T) {
	k1, err := NewDPoPKey(vecPrivPEM)
	require.NoError(t, err)
	mem := NewInMemoryKeyStore()
	require.NoError(t, mem.Store(context.Background(), "a1", vecPrivPEM))
	k2, err := NewDPoPKeyWithKeyStore(mem, "a1", vecPubPEM)
	require.NoError(t, err)
	const goroutines, each = 8, 125
	jtis := make(chan string, goroutines*each)
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		k := k1
		if g%2 == 1 {
			k = k2
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				proof, err := k.Proof(context.Background(), "POST", "https://gw.example/check", "")
				if err != nil {
					t.Error(err)
					return
				}
				claims, err := verifiedClaims(proof)
				if err != nil {
					t.Error(err)
					return
				}
				jti, _ := claims["jti"].(string)
				jtis <- jti
			}
		}()
	}
	wg.Wait()
	close(jtis)
	seen := map[string]bool{}
	for j := range jtis {
		assert.Len(t, j, 32)
		assert.NotEqual(t, strings.Repeat("0", 32), j)
		assert.False(t, seen[j], "jti %s repeats", j)
		seen[j] = true
	}
	assert.Len(t, seen, goroutines*each)
}

// When the random source fails, the pool hands nothing out and says so,
// and the next read refills it; bytes handed out never come again.
func TestJTIPoolRandomFailure(t *testing.T) {
	fail := true
	next := uint32(0)
	p := jtiPool{off: jtiPoolSize, fill: func(b []byte) (int, error) {
		if fail {
			b[0] = 0xff // a partial read: what it wrote is never handed out
			return 1, errors.New("entropy source failed")
		}
		for i := 0; i+4 <= len(b); i += 4 { // no two 16-byte jtis alike
			next++
			binary.BigEndian.PutUint32(b[i:], next)
		}
		return len(b), nil
	}}
	b := make([]byte, 16)
	require.Error(t, p.read(b), "a failed refill handed out bytes")
	assert.Equal(t, make([]byte, 16), b, "a failed refill wrote into the jti")
	fail = false
	seen := map[string]bool{}
	for i := 0; i < 3*jtiPoolSize/16; i++ { // across three refills
		require.NoError(t, p.read(b))
		assert.False(t, seen[string(b)], "read %d repeats %x", i, b)
		seen[string(b)] = true
	}
	fail = true
	var err error
	for i := 0; err == nil && i <= jtiPoolSize/16; i++ {
		err = p.read(b)
		assert.False(t, err == nil && seen[string(b)], "read repeats %x", b)
		seen[string(b)] = true
	}
	require.Error(t, err, "the pool never refilled")

	// The error reaches the caller as a validation error keeping its cause,
	// and the next read refills.
	k, kerr := NewDPoPKey(vecPrivPEM)
	require.NoError(t, kerr)
	var jti [16]byte
	saved := jtiBytes.fill
	jtiBytes.mu.Lock()
	jtiBytes.fill, jtiBytes.off = func([]byte) (int, error) { return 0, errors.New("entropy source failed") }, jtiPoolSize
	jtiBytes.mu.Unlock()
	err = k.readJTI(jti[:])
	jtiBytes.mu.Lock()
	jtiBytes.fill = saved
	jtiBytes.mu.Unlock()
	var ve *ValidationError
	require.ErrorAs(t, err, &ve, "readJTI = %v", err)
	require.ErrorContains(t, err, "entropy source failed")
	require.NoError(t, k.readJTI(jti[:]))
	assert.NotEqual(t, [16]byte{}, jti)
}
