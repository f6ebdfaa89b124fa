package agenttrust

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/agenttrustid/agenttrust-go/internal/allocs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The expected proof was built independently (Python for the JSON and
// base64url, OpenSSL for the signature) from the RFC 8032 test 1 key.
const (
	vecDPoPHeader  = `{"typ":"dpop+jwt","alg":"EdDSA","jwk":{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}}`
	vecDPoPPayload = `{"htm":"POST","htu":"http://127.0.0.1:8082/api/v1/agenttrust/check","iat":1767225600,"jti":"000102030405060708090a0b0c0d0e0f","ath":"6nV-7r_V_xayfqB4JA8uHoFMDW7RrJgYCpO8U_CfzeY"}`
	vecDPoPProof   = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVkRFNBIiwiandrIjp7Imt0eSI6Ik9LUCIsImNydiI6IkVkMjU1MTkiLCJ4IjoiMTFxWUFZS3hDcmZWU183VHlXUUhPZzdoY3ZQYXBpTWxyd0lhYVBjSFVSbyJ9fQ" +
		".eyJodG0iOiJQT1NUIiwiaHR1IjoiaHR0cDovLzEyNy4wLjAuMTo4MDgyL2FwaS92MS9hZ2VudHRydXN0L2NoZWNrIiwiaWF0IjoxNzY3MjI1NjAwLCJqdGkiOiIwMDAxMDIwMzA0MDUwNjA3MDgwOTBhMGIwYzBkMGUwZiIsImF0aCI6IjZuVi03cl9WX3hheWZxQjRKQTh1SG9GTURXN1JySmdZQ3BPOFVfQ2Z6ZVkifQ" +
		".gcqAeb72S72BQbpLQ_KGSCjG-C1hFKj3vyPRgBxcMeIK47VVeJwBQXIJtBDXPgcWFiWAXb4rzulAIshpM-m5DQ"
)

var vecTime = time.Unix(1767225600, 0)

func fixedJTI() *bytes.Reader {
	return bytes.NewReader([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
}

// splitProof decodes a proof's header and payload bytes and verifies its
// signature under the JWK it carries.
func splitProof(t testing.TB, proof string) (header, payload []byte) {
	t.Helper()
	header, payload, err := verifyProof(proof)
	require.NoError(t, err)
	return header, payload
}

// verifyProof is splitProof for any goroutine: it returns an error instead
// of failing the test.
func verifyProof(proof string) (header, payload []byte, err error) {
	parts := strings.Split(proof, ".")
	if len(parts) != 3 {
		return nil, nil, fmt.Errorf("proof has %d parts", len(parts))
	}
	var dec [3][]byte
	for i, p := range parts {
		if dec[i], err = base64.RawURLEncoding.DecodeString(p); err != nil {
			return nil, nil, fmt.Errorf("proof part %d: %w", i, err)
		}
	}
	var h struct {
		JWK struct{ X string } `json:"jwk"`
	}
	if err := json.Unmarshal(dec[0], &h); err != nil {
		return nil, nil, fmt.Errorf("proof header: %w", err)
	}
	x, err := base64.RawURLEncoding.DecodeString(h.JWK.X)
	if err != nil || len(x) != ed25519.PublicKeySize {
		return nil, nil, fmt.Errorf("proof jwk x %q", h.JWK.X)
	}
	if !ed25519.Verify(x, []byte(parts[0]+"."+parts[1]), dec[2]) {
		return nil, nil, errors.New("proof signature does not verify under its own jwk")
	}
	return dec[0], dec[1], nil
}

func TestDPoPProofFixedVector(t *testing.T) {
	for _, via := range []string{"pem", "store"} {
		var k *DPoPKey
		var err error
		if via == "pem" {
			k, err = NewDPoPKey(vecPrivPEM)
		} else {
			ks := NewInMemoryKeyStore()
			require.NoError(t, ks.Store(context.Background(), "a1", vecPrivPEM))
			k, err = NewDPoPKeyWithKeyStore(ks, "a1", vecPubPEM)
		}
		require.NoError(t, err)
		k.rand = fixedJTI()
		// The query and fragment are not part of htu.
		proof, err := k.mint(context.Background(), vecTime, "POST", "http://127.0.0.1:8082/api/v1/agenttrust/check?x=1#frag", "wimse.jwt.token")
		require.NoError(t, err)
		h, p := splitProof(t, proof)
		assert.Equal(t, vecDPoPHeader, string(h), "%s: header\n%s\nwant\n%s", via, h, vecDPoPHeader)
		assert.Equal(t, vecDPoPPayload, string(p), "%s: payload\n%s\nwant\n%s", via, p, vecDPoPPayload)
		assert.Equal(t, vecDPoPProof, proof, "%s: proof differs from the vector", via)
	}
}

func TestDPoPProofClaims(t *testing.T) {
	k, err := NewDPoPKey(vecPrivPEM)
	require.NoError(t, err)
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		proof, err := k.Proof(context.Background(), "post", "https://gw.example/a?b=<&>#c", "")
		require.NoError(t, err)
		_, p := splitProof(t, proof)
		var claims map[string]any
		require.NoError(t, json.Unmarshal(p, &claims))
		jti, _ := claims["jti"].(string)
		require.Len(t, jti, 32, "jti %q (seen before: %v)", jti, seen[jti])
		require.Equal(t, jti, strings.ToLower(jti), "jti %q (seen before: %v)", jti, seen[jti])
		require.False(t, seen[jti], "jti %q (seen before: %v)", jti, seen[jti])
		seen[jti] = true
		assert.Equal(t, "post", claims["htm"], "claims %v", claims)
		assert.Equal(t, "https://gw.example/a", claims["htu"], "claims %v", claims)
		_, ok := claims["ath"]
		assert.False(t, ok, "ath without an access token")
		iat := int64(claims["iat"].(float64))
		assert.LessOrEqual(t, time.Since(time.Unix(iat, 0)).Abs(), 5*time.Second, "iat %d", iat)
	}
	// No HTML escaping, and encoding/json's escaping otherwise.
	k.rand = fixedJTI()
	odd := "http://h/p&q<r>\"\\\u2028\x01é\xff"
	proof, err := k.mint(context.Background(), vecTime, "GET", odd, "")
	require.NoError(t, err)
	_, p := splitProof(t, proof)
	var want bytes.Buffer
	enc := json.NewEncoder(&want)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(odd)
	assert.True(t, bytes.Contains(p, []byte(`"htu":`+strings.TrimSpace(want.String())+`,`)), "payload %s, want htu %s", p, want.String())
}

func TestDPoPValidation(t *testing.T) {
	_, err := MintDPoPProof(vecPubPEM, "POST", "http://h/p", "")
	assert.ErrorIs(t, err, ErrValidation, "public PEM as private: %v", err)
	for _, c := range [][2]string{{"", "http://h/p"}, {"POST", ""}, {"POST", "/relative"}, {"POST", "http://"}, {"POST", "?q"}} {
		_, err := MintDPoPProof(vecPrivPEM, c[0], c[1], "")
		assert.ErrorIs(t, err, ErrValidation, "%q %q: %v", c[0], c[1], err)
	}
	ks := NewInMemoryKeyStore()
	_, err = NewDPoPKeyWithKeyStore(nil, "a1", vecPubPEM)
	assert.ErrorIs(t, err, ErrValidation, "nil store: %v", err)
	_, err = NewDPoPKeyWithKeyStore(ks, "", vecPubPEM)
	assert.ErrorIs(t, err, ErrValidation, "no agent: %v", err)
	_, err = NewDPoPKeyWithKeyStore(ks, "a1", vecPrivPEM)
	assert.ErrorIs(t, err, ErrValidation, "private PEM as public: %v", err)
	_, err = MintDPoPProofWithKeyStore(context.Background(), ks, "a1", vecPubPEM, "POST", "http://h/p", "")
	assert.ErrorIs(t, err, ErrKeyNotFound, "unknown agent: %v", err)
	assert.ErrorIs(t, err, ErrKeyStore, "unknown agent: %v", err)
	assert.NotErrorIs(t, err, ErrNetwork, "unknown agent: %v", err)
	_, err = MintDPoPProof(vecPrivPEM, "POST", "http://h/p", "tok")
	assert.NoError(t, err, "valid")
	for i, k := range []*DPoPKey{nil, {}} {
		_, err = k.Proof(context.Background(), "POST", "http://h/p", "")
		assert.ErrorIs(t, err, ErrValidation, "nil, then zero DPoPKey: %d: %v", i, err)
	}
}

func TestDPoPKeyHidesSecrets(t *testing.T) {
	k, err := NewDPoPKey(vecPrivPEM)
	require.NoError(t, err)
	seed := string(vecKey(t).Seed())
	assertNoSecret(t, "DPoPKey", k, seed, strings.Split(vecPrivPEM, "\n")[1])
	assert.Contains(t, k.String(), vecJWKX, "String() = %s", k)
	// A dump of its fields, as of a struct that held it by value (fmt
	// prints them without the methods of the type that hides them).
	assertNoSecret(t, "DPoPKey's fields", reflect.ValueOf(k).Elem(), seed, string(vecKey(t)))
}

func TestDPoPMintAllocs(t *testing.T) {
	k, err := NewDPoPKey(vecPrivPEM)
	require.NoError(t, err)
	ctx := context.Background()
	n := allocs.Least(200, nil, func() {
		_, _ = k.Proof(ctx, "POST", "http://127.0.0.1:8082/api/v1/agenttrust/check", "header.payload.signature-of-a-wimse-token")
	})
	assert.LessOrEqual(t, n, 10.0, "%v allocations per proof, want at most 10", n)
	t.Logf("%v allocations per proof", n)
}
