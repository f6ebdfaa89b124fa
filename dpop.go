package agenttrust

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// DPoPKey mints DPoP proofs (RFC 9449) with one agent key. It holds the
// parsed key and the encoded proof header, so minting costs one Ed25519
// signature and a few small allocations. It is safe for concurrent use, and
// printing or logging it shows the public key only.
//
// Each proof is a compact JWS with the header
// {"typ":"dpop+jwt","alg":"EdDSA","jwk":{"kty":"OKP","crv":"Ed25519","x":…}}
// and the claims htm, htu (the URL without query and fragment), iat, jti
// (32 random hex digits, fresh for every proof) and, with an access token,
// ath (its SHA-256 in base64url). A gateway refuses a proof it has seen
// before, so every request needs a new one.
type DPoPKey struct {
	header string // base64url of the protected header
	x      string // base64url of the public key
	sign   func(ctx context.Context, data []byte) ([]byte, error)
	rand   io.Reader        // jti source; crypto/rand unless a test sets it
	now    func() time.Time // iat clock
}

// NewDPoPKey returns a DPoPKey for an Ed25519 PKCS#8 private key PEM. An
// invalid PEM is a *ValidationError.
func NewDPoPKey(privateKeyPEM string) (*DPoPKey, error) {
	priv, err := ParsePrivateKeyPEM(privateKeyPEM)
	if err != nil {
		return nil, err
	}
	return newDPoPKey(priv.Public().(ed25519.PublicKey), func(_ context.Context, data []byte) ([]byte, error) {
		return ed25519.Sign(priv, data), nil
	}), nil
}

// NewDPoPKeyWithKeyStore returns a DPoPKey that signs through ks with
// agentID's key. The proof's JWK is publicKeyPEM, a PKIX Ed25519 PEM (else
// a *ValidationError); it must be the public half of the stored key, or the
// gateway refuses the proofs.
func NewDPoPKeyWithKeyStore(ks KeyStore, agentID, publicKeyPEM string) (*DPoPKey, error) {
	if ks == nil {
		return nil, validationErr("missing required key store")
	}
	if agentID == "" {
		return nil, validationErr("missing required agent_id")
	}
	pub, err := ParsePublicKeyPEM(publicKeyPEM)
	if err != nil {
		return nil, err
	}
	return newDPoPKey(pub, func(ctx context.Context, data []byte) ([]byte, error) {
		sig, err := ks.Sign(ctx, agentID, data)
		if err != nil {
			return nil, keyStoreErr("key store could not sign a DPoP proof for agent "+strconv.Quote(agentID), err)
		}
		return sig, nil
	}), nil
}

func newDPoPKey(pub ed25519.PublicKey, sign func(context.Context, []byte) ([]byte, error)) *DPoPKey {
	x := base64.RawURLEncoding.EncodeToString(pub)
	h := `{"typ":"dpop+jwt","alg":"EdDSA","jwk":{"kty":"OKP","crv":"Ed25519","x":"` + x + `"}}`
	return &DPoPKey{header: base64.RawURLEncoding.EncodeToString([]byte(h)), x: x, sign: sign, rand: rand.Reader, now: time.Now}
}

// Proof mints a proof for a request with the given method (sent as is,
// e.g. "POST") and URL; the URL's query and fragment are not part of the
// proof. A non-empty accessToken adds its ath claim. An empty method or a
// URL that is not absolute is a *ValidationError.
func (k *DPoPKey) Proof(ctx context.Context, method, url, accessToken string) (string, error) {
	return k.mint(ctx, k.now(), method, url, accessToken)
}

// String shows the key's public JWK member only.
func (k *DPoPKey) String() string { return "agenttrust.DPoPKey{x: " + strconv.Quote(k.x) + "}" }

// GoString is String.
func (k *DPoPKey) GoString() string { return k.String() }

// Format prints String for every verb.
func (k *DPoPKey) Format(f fmt.State, verb rune) { formatRedacted(f, verb, k, k) }

// LogValue shows the public JWK member only.
func (k *DPoPKey) LogValue() slog.Value { return slog.GroupValue(slog.String("x", k.x)) }

// MintDPoPProof mints one DPoP proof with an Ed25519 private key PEM. It
// parses the PEM on every call; NewDPoPKey does it once.
func MintDPoPProof(privateKeyPEM, method, url, accessToken string) (string, error) {
	k, err := NewDPoPKey(privateKeyPEM)
	if err != nil {
		return "", err
	}
	return k.Proof(context.Background(), method, url, accessToken)
}

// MintDPoPProofWithKeyStore mints one DPoP proof signed through ks with
// agentID's key, whose public half is publicKeyPEM.
func MintDPoPProofWithKeyStore(ctx context.Context, ks KeyStore, agentID, publicKeyPEM, method, url, accessToken string) (string, error) {
	k, err := NewDPoPKeyWithKeyStore(ks, agentID, publicKeyPEM)
	if err != nil {
		return "", err
	}
	return k.Proof(ctx, method, url, accessToken)
}

// htuOf returns u without its query and fragment.
func htuOf(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		return u[:i]
	}
	return u
}

var b64 = base64.RawURLEncoding

// athLen is the length of an ath claim: a SHA-256 in base64url.
const athLen = 43

func (k *DPoPKey) mint(ctx context.Context, now time.Time, method, url, accessToken string) (string, error) {
	var buf [athLen]byte
	var ath []byte
	if accessToken != "" {
		ath = appendATH(buf[:0], accessToken)
	}
	return k.mintATH(ctx, now, method, url, ath)
}

// appendATH appends the ath claim of an access token (its SHA-256 in
// base64url) to dst. A token of up to 2 KiB is hashed from a copy on the
// stack, without allocating.
func appendATH(dst []byte, accessToken string) []byte {
	var sum [sha256.Size]byte
	var buf [2048]byte
	if len(accessToken) <= len(buf) {
		sum = sha256.Sum256(buf[:copy(buf[:], accessToken)])
	} else {
		sum = sha256.Sum256([]byte(accessToken))
	}
	return b64.AppendEncode(dst, sum[:])
}

// jtiZeros holds the place of the jti in a payload until its random bytes
// are read.
const jtiZeros = "00000000000000000000000000000000"

// mintATH mints a proof with a precomputed ath (nil for none). The payload
// is written on the stack; one buffer, allocated once at its final size,
// holds the signing input, then the signature, and lends its spare tail to
// the jti's random bytes.
func (k *DPoPKey) mintATH(ctx context.Context, now time.Time, method, url string, ath []byte) (string, error) {
	if method == "" {
		return "", validationErr("DPoP: missing required method")
	}
	htu := htuOf(url)
	if i := strings.Index(htu, "://"); i <= 0 || i+3 == len(htu) {
		return "", validationErr("DPoP: the URL must be absolute")
	}
	var scratch [320]byte
	p := append(scratch[:0], `{"htm":`...)
	p = appendJSONString(p, method)
	p = append(p, `,"htu":`...)
	p = appendJSONString(p, htu)
	p = append(p, `,"iat":`...)
	p = strconv.AppendInt(p, now.Unix(), 10)
	p = append(p, `,"jti":"`...)
	jtiAt := len(p)
	p = append(p, jtiZeros...)
	if ath != nil {
		p = append(p, `","ath":"`...)
		p = append(p, ath...)
	}
	p = append(p, `"}`...)

	const jtiBytes = len(jtiZeros) / 2
	out := make([]byte, 0, len(k.header)+1+b64.EncodedLen(len(p))+1+b64.EncodedLen(ed25519.SignatureSize)+jtiBytes)
	jti := out[cap(out)-jtiBytes : cap(out)]
	if _, err := io.ReadFull(k.rand, jti); err != nil {
		return "", NewError(CodeValidation, "DPoP: reading random bytes: "+err.Error(), err)
	}
	hex.Encode(p[jtiAt:jtiAt+len(jtiZeros)], jti)
	out = append(out, k.header...)
	out = append(out, '.')
	out = b64.AppendEncode(out, p)
	// The signer sees the signing input alone, without the spare capacity.
	sig, err := k.sign(ctx, out[:len(out):len(out)])
	if err != nil {
		return "", err
	}
	if len(sig) != ed25519.SignatureSize {
		return "", keyStoreErr("DPoP signature", fmt.Errorf("%d bytes, not an Ed25519 signature", len(sig)))
	}
	out = append(out, '.')
	out = b64.AppendEncode(out, sig)
	return string(out), nil
}
