package agenttrust

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The key of RFC 8032 §7.1, test 1. The PEMs and the PoP signature below
// were produced independently with OpenSSL from this seed:
//
//	openssl pkey -inform DER (302e020100300506032b657004220420 || seed)
//	openssl pkeyutl -sign -rawin (the pop-v1 message)
const (
	vecSeedHex = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
	vecPrivPEM = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n-----END PRIVATE KEY-----\n"
	vecPubPEM  = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n-----END PUBLIC KEY-----\n"
	// RFC 8032 test 1: the signature of the empty message.
	vecEmptySigHex = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
	vecPoPMessage  = "pop-v1:nonce-1:agent-1:aud-a,aud-b:1767225600"
	vecPoPSig      = "QvcRfhdOpEquXhLr74X9jSOLEikX9v3dwmIjPvcoEars7wrV2SfGp7f2GSgoHFJMmTzibx0V-ScOypmabt8lDw"
	vecPubJSON     = `"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n-----END PUBLIC KEY-----\n"`
	vecJWKX        = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
)

func vecKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	seed, err := hex.DecodeString(vecSeedHex)
	require.NoError(t, err)
	return ed25519.NewKeyFromSeed(seed)
}

func TestKeyPairPEMMatchesFixedVectors(t *testing.T) {
	kp := keyPairPEM(vecKey(t))
	assert.Equal(t, vecPrivPEM, kp.PrivateKeyPEM, "private PEM:\n%q\nwant\n%q", kp.PrivateKeyPEM, vecPrivPEM)
	assert.Equal(t, vecPubPEM, kp.PublicKeyPEM, "public PEM:\n%q\nwant\n%q", kp.PublicKeyPEM, vecPubPEM)
	sig, err := SignWithPrivateKeyPEM(vecPrivPEM, nil)
	require.NoError(t, err)
	got := hex.EncodeToString(sig)
	assert.Equal(t, vecEmptySigHex, got, "RFC 8032 test 1 signature = %s", got)
	sig, err = SignWithPrivateKeyPEM(vecPrivPEM, []byte(vecPoPMessage))
	require.NoError(t, err)
	got = base64.RawURLEncoding.EncodeToString(sig)
	assert.Equal(t, vecPoPSig, got, "PoP signature = %s (%d chars), want %s", got, len(got), vecPoPSig)
	assert.Len(t, got, 86, "PoP signature = %s (%d chars), want %s", got, len(got), vecPoPSig)
}

func TestGenerateAgentKey(t *testing.T) {
	a, err := GenerateAgentKey()
	require.NoError(t, err)
	b, err := GenerateAgentKey()
	require.NoError(t, err)
	require.NotEqual(t, b.PrivateKeyPEM, a.PrivateKeyPEM, "two generated keys are equal")
	require.NotEqual(t, b.PublicKeyPEM, a.PublicKeyPEM, "two generated keys are equal")
	for _, k := range []AgentKeyPair{a, b} {
		assert.True(t, strings.HasPrefix(k.PublicKeyPEM, "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA"), "unexpected PEM format: %q", k.PublicKeyPEM)
		assert.True(t, strings.HasPrefix(k.PrivateKeyPEM, "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI"), "unexpected PEM format: %q", k.PublicKeyPEM)
		assert.True(t, strings.HasSuffix(k.PublicKeyPEM, "-----\n"), "unexpected PEM format: %q", k.PublicKeyPEM)
		assert.True(t, strings.HasSuffix(k.PrivateKeyPEM, "-----\n"), "unexpected PEM format: %q", k.PublicKeyPEM)
		assert.NotContains(t, k.PublicKeyPEM+k.PrivateKeyPEM, "\r", "unexpected PEM format: %q", k.PublicKeyPEM)
		priv, err := ParsePrivateKeyPEM(k.PrivateKeyPEM)
		require.NoError(t, err)
		pub, err := ParsePublicKeyPEM(k.PublicKeyPEM)
		require.NoError(t, err)
		assert.True(t, pub.Equal(priv.Public()), "public key does not belong to the private key")
		p, _ := PublicKeyPEM(pub)
		assert.Equal(t, k.PublicKeyPEM, p, "PublicKeyPEM = %q", p)
	}
	_, err = generateAgentKey(bytes.NewReader(nil))
	assert.ErrorIs(t, err, ErrAgentTrust, "failing entropy source: %v", err)
}

func pemOf(t testing.TB, typ string, der []byte) string {
	t.Helper()
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func TestParseKeysRejectNonEd25519(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	rsaPKCS8, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	ecPKCS8, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	rsaPub, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	ecPub, _ := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	privBody := strings.Split(vecPrivPEM, "\n")[1]

	privCases := map[string]string{
		"empty":            "",
		"not PEM":          "hello",
		"RSA PKCS#8":       pemOf(t, "PRIVATE KEY", rsaPKCS8),
		"P-256 PKCS#8":     pemOf(t, "PRIVATE KEY", ecPKCS8),
		"public as priv":   vecPubPEM,
		"RSA PKCS#1 type":  pemOf(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)),
		"trailing data":    vecPrivPEM + "garbage",
		"two blocks":       vecPrivPEM + vecPrivPEM,
		"headers":          "-----BEGIN PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\n" + privBody + "\n-----END PRIVATE KEY-----\n",
		"corrupt DER":      pemOf(t, "PRIVATE KEY", []byte{0x30, 0x03, 1, 2, 3}),
		"encrypted PKCS#8": pemOf(t, "ENCRYPTED PRIVATE KEY", rsaPKCS8),
	}
	for name, in := range privCases {
		_, err := ParsePrivateKeyPEM(in)
		wantValidation(t, err, "private "+name)
		if privBody != "" {
			assert.NotContains(t, err.Error(), privBody, "%s: error reveals the key", name)
		}
		_, err = SignWithPrivateKeyPEM(in, []byte("x"))
		assert.Error(t, err, "%s: SignWithPrivateKeyPEM signed", name)
	}
	pubCases := map[string]string{
		"empty":        "",
		"not PEM":      "-----BEGIN PUBLIC KEY-----\nnope",
		"RSA":          pemOf(t, "PUBLIC KEY", rsaPub),
		"P-256":        pemOf(t, "PUBLIC KEY", ecPub),
		"private":      vecPrivPEM,
		"trailing":     vecPubPEM + "x",
		"raw 32 bytes": pemOf(t, "PUBLIC KEY", vecKey(t).Public().(ed25519.PublicKey)),
	}
	for name, in := range pubCases {
		_, err := ParsePublicKeyPEM(in)
		wantValidation(t, err, "public "+name)
	}
	_, err = PublicKeyPEM(ed25519.PublicKey{1, 2})
	assert.ErrorIs(t, err, ErrValidation, "PublicKeyPEM(short) = %v", err)
	// CRLF line endings and surrounding white space are still the same key.
	_, err = ParsePrivateKeyPEM("\n" + strings.ReplaceAll(vecPrivPEM, "\n", "\r\n") + "  \n")
	assert.NoError(t, err, "CRLF PEM")
}

// TestParseKeyErrorsNameTheKey: the message says which key was parsed,
// in which format, and what it holds instead of an Ed25519 key.
func TestParseKeyErrorsNameTheKey(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	rsaPKCS8, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	rsaPub, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	corrupt := []byte{0x30, 0x03, 1, 2, 3}
	for _, c := range []struct {
		parse func(string) error
		in    string
		want  string
	}{
		{parsePriv, pemOf(t, "PRIVATE KEY", corrupt), "agenttrust: private key: not a PKCS#8 key: "},
		{parsePub, pemOf(t, "PUBLIC KEY", corrupt), "agenttrust: public key: not a PKIX key: "},
		{parsePriv, pemOf(t, "PRIVATE KEY", rsaPKCS8), "agenttrust: private key: a *rsa.PrivateKey key, not Ed25519 ("},
		{parsePub, pemOf(t, "PUBLIC KEY", rsaPub), "agenttrust: public key: a *rsa.PublicKey key, not Ed25519 ("},
		{parsePub, vecPrivPEM, `agenttrust: public key: PEM type "PRIVATE KEY", want "PUBLIC KEY" (`},
	} {
		err := c.parse(c.in)
		wantValidation(t, err, c.want)
		assert.True(t, strings.HasPrefix(err.Error(), c.want), "error %q, want prefix %q", err, c.want)
	}
}

func parsePriv(s string) error { _, err := ParsePrivateKeyPEM(s); return err }
func parsePub(s string) error  { _, err := ParsePublicKeyPEM(s); return err }

func TestAgentKeyPairHidesPrivateKey(t *testing.T) {
	kp := keyPairPEM(vecKey(t))
	body := strings.Split(vecPrivPEM, "\n")[1]
	assertNoSecret(t, "AgentKeyPair", kp, body, vecPrivPEM)
	assertNoSecret(t, "*AgentKeyPair", &kp, body)
	assertNoSecret(t, "AgentKeyPair in a struct", struct{ K AgentKeyPair }{kp}, body)
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("key", "pair", kp)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("key", "pair", kp)
	assert.NotContains(t, buf.String(), body[:20], "slog output: %s", buf.String())
	assert.Contains(t, buf.String(), "MCowBQYDK2VwAyEA", "slog output: %s", buf.String())
	assert.Contains(t, kp.String(), "MCowBQYDK2VwAyEA", "String() = %s", kp)
	assert.Contains(t, kp.String(), "[redacted]", "String() = %s", kp)
}

// FuzzParseKeyPEM checks that no input makes the key parsers panic, and
// that whatever they accept is a usable Ed25519 key.
func FuzzParseKeyPEM(f *testing.F) {
	f.Add(vecPrivPEM)
	f.Add(vecPubPEM)
	f.Add("-----BEGIN PRIVATE KEY-----\n\n-----END PRIVATE KEY-----\n")
	f.Fuzz(func(t *testing.T, s string) {
		if priv, err := ParsePrivateKeyPEM(s); err == nil {
			assert.Len(t, priv, 64, "accepted a %d-byte private key", len(priv))
		}
		if pub, err := ParsePublicKeyPEM(s); err == nil {
			assert.Len(t, pub, 32, "accepted a %d-byte public key", len(pub))
		}
	})
}
