package agenttrust

import (
	"context"
	"crypto/ed25519"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
)

// Benchmarks for agent identity. Compare within one run, e.g.
//
//	go test -run '^$' -bench 'Identity|DPoPMint|CredentialsHit' -benchmem -count 6
//
// BenchmarkIdentityCheck/{plain,credentialed} against a server that only
// answers (the SDK's own cost) and against the fake gateway that really
// verifies the token and the proof; BenchmarkDPoPMint against a bare
// ed25519.Sign of the same bytes; BenchmarkCredentialsHit with a cached
// token under 64 goroutines.

// identityBenchServer answers challenges, WIMSE tokens (valid for a day)
// and checks without verifying anything.
func identityBenchServer(tb testing.TB) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	}))
	tb.Cleanup(srv.Close)
	return srv
}

func credentialedClient(tb testing.TB, c *Client, agentID string, ks KeyStore, pubPEM string) {
	tb.Helper()
	ac, err := c.NewAgentCredentials(AgentCredentialsParams{AgentID: agentID, KeyStore: ks, PublicKeyPEM: pubPEM})
	if err != nil {
		tb.Fatal(err)
	}
	if err := c.UseAgentCredentials(ac); err != nil {
		tb.Fatal(err)
	}
	if _, err := ac.Token(context.Background()); err != nil {
		tb.Fatal(err)
	}
}

func BenchmarkIdentityCheck(b *testing.B) {
	run := func(b *testing.B, c *Client, p ActionCheckParams) {
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			r, err := c.Actions.Check(ctx, p)
			if err != nil || !r.Allowed {
				b.Fatal(r, err)
			}
		}
	}
	ks := NewInMemoryKeyStore()
	if err := ks.Store(context.Background(), "agent-123", vecPrivPEM); err != nil {
		b.Fatal(err)
	}
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
		if err != nil {
			b.Fatal(err)
		}
		fks := NewInMemoryKeyStore()
		a, err := c.Agents.Create(context.Background(), AgentCreateParams{Name: "bench", KeyStore: fks})
		if err != nil {
			b.Fatal(err)
		}
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
	if err != nil {
		b.Fatal(err)
	}
	proof, err := k.Proof(context.Background(), "POST", "http://127.0.0.1:8082/api/v1/agenttrust/check", "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJl")
	if err != nil {
		b.Fatal(err)
	}
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
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := k.Proof(ctx, "POST", u, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("keystore", func(b *testing.B) {
		ks := NewInMemoryKeyStore()
		if err := ks.Store(ctx, "a1", vecPrivPEM); err != nil {
			b.Fatal(err)
		}
		k, err := NewDPoPKeyWithKeyStore(ks, "a1", vecPubPEM)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := k.Proof(ctx, "POST", u, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pem", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := MintDPoPProof(vecPrivPEM, "POST", u, tok); err != nil {
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
	if err := ks.Store(context.Background(), "agent-123", vecPrivPEM); err != nil {
		b.Fatal(err)
	}
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
		if ac.cur.Load() != issued {
			b.Error("the token was refreshed during the benchmark")
		}
	})
}

// BenchmarkIdentityPaired measures, in the same iteration and so under the
// same load, a bare Ed25519 signature, a plain check, a credentialed check
// and a DPoP mint, and reports the ratios: extra/sign is (credentialed -
// plain) / sign, the target being at most 1.1; mint/sign is the DPoP mint
// against the bare signature, the target being at most 1.5. Pairing makes
// the ratios meaningful on a loaded machine where separate runs are not.
func BenchmarkIdentityPaired(b *testing.B) {
	ctx := context.Background()
	priv := vecKey(b)
	dk, err := NewDPoPKey(vecPrivPEM)
	if err != nil {
		b.Fatal(err)
	}
	const u, tok = "http://127.0.0.1:8082/api/v1/agenttrust/check", "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJl"
	proof, err := dk.Proof(ctx, "POST", u, tok)
	if err != nil {
		b.Fatal(err)
	}
	msg := []byte(proof[:strings.LastIndexByte(proof, '.')])

	paired := func(b *testing.B, plain, cred *Client, p ActionCheckParams) {
		check := func(c *Client) time.Duration {
			t0 := time.Now()
			r, err := c.Actions.Check(ctx, p)
			if err != nil || !r.Allowed {
				b.Fatal(r, err)
			}
			return time.Since(t0)
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
			if _, err := dk.Proof(ctx, "POST", u, tok); err != nil {
				b.Fatal(err)
			}
			return time.Since(t0)
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
	}
	b.Run("server=answer", func(b *testing.B) {
		srv := identityBenchServer(b)
		ks := NewInMemoryKeyStore()
		if err := ks.Store(ctx, "agent-123", vecPrivPEM); err != nil {
			b.Fatal(err)
		}
		cred := newTestClient(b, srv.URL)
		credentialedClient(b, cred, "agent-123", ks, vecPubPEM)
		paired(b, newTestClient(b, srv.URL), cred, benchParams)
	})
	// The fake verifies the token and the proof of every credentialed
	// check it receives (the settings stay off so that the plain client
	// is served too): its cred-ns includes the server's two verifications.
	b.Run("server=fake", func(b *testing.B) {
		srv := agenttrusttest.NewTestServer(b)
		opts := []Option{WithBaseURL(srv.URL()), WithAuthURL(srv.AuthURL()), WithAPIKey(srv.APIKey())}
		plain, err := New(opts...)
		if err != nil {
			b.Fatal(err)
		}
		cred, err := New(opts...)
		if err != nil {
			b.Fatal(err)
		}
		ks := NewInMemoryKeyStore()
		a, err := cred.Agents.Create(ctx, AgentCreateParams{Name: "bench", KeyStore: ks})
		if err != nil {
			b.Fatal(err)
		}
		credentialedClient(b, cred, a.ID, ks, a.PublicKey)
		p := benchParams
		p.AgentID = a.ID
		paired(b, plain, cred, p)
		if n := len(srv.DPoPProofs()); n == 0 || !srv.DPoPProofs()[n-1].Accepted {
			b.Fatal("the fake did not accept the proofs")
		}
	})
}
