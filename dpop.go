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
	"sync"
	"sync/atomic"
	"time"
)

// DPoPKey mints DPoP proofs (RFC 9449) with one agent key. It holds the
// parsed key, the encoded proof header and the encoded start of the proofs
// for the last URL used, so that minting costs one Ed25519 signature and,
// with a key held in memory, one allocation. It is safe for concurrent use,
// and printing or logging it shows the public key only.
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

	// The key signs in one of three ways: held here (priv, a func so that
	// even a dump of the struct's fields shows no key bytes), held by an
	// in-memory store (mem, for agentID), both without copying the signing
	// input to the heap, or through any other key store (sign).
	priv    func() ed25519.PrivateKey
	mem     *InMemoryKeyStore
	agentID string
	sign    func(ctx context.Context, data []byte) ([]byte, error)

	rand   io.Reader        // jti source when a test sets it; nil: crypto/rand
	now    func() time.Time // iat clock
	prefix atomic.Pointer[dpopPrefix]
}

// dpopPrefix is what every proof for one method and URL starts with.
type dpopPrefix struct {
	method, url string // as given to mint
	// input is the signing input up to the payload's last whole base64
	// group before the iat; rest is the payload bytes after that group.
	input string
	rest  string
}

// NewDPoPKey returns a DPoPKey for an Ed25519 PKCS#8 private key PEM. An
// invalid PEM is a *ValidationError.
func NewDPoPKey(privateKeyPEM string) (*DPoPKey, error) {
	priv, err := ParsePrivateKeyPEM(privateKeyPEM)
	if err != nil {
		return nil, err
	}
	k := newDPoPKey(priv.Public().(ed25519.PublicKey))
	k.priv = func() ed25519.PrivateKey { return priv }
	return k, nil
}

// NewDPoPKeyWithKeyStore returns a DPoPKey that signs through ks with
// agentID's key. The proof's JWK is publicKeyPEM, a PKIX Ed25519 PEM (else
// a *ValidationError); it must be the public half of the stored key, or the
// gateway refuses the proofs.
func NewDPoPKeyWithKeyStore(ks KeyStore, agentID, publicKeyPEM string) (*DPoPKey, error) {
	if missingKeyStore(ks) {
		return nil, validationErr("missing required key store")
	}
	if agentID == "" {
		return nil, validationErr("missing required agent_id")
	}
	pub, err := ParsePublicKeyPEM(publicKeyPEM)
	if err != nil {
		return nil, err
	}
	k := newDPoPKey(pub)
	k.agentID = agentID
	if mem, ok := ks.(*InMemoryKeyStore); ok {
		k.mem = mem
		return k, nil
	}
	k.sign = func(ctx context.Context, data []byte) ([]byte, error) {
		sig, err := ks.Sign(ctx, agentID, data)
		if err != nil {
			return nil, k.signErr(err)
		}
		return sig, nil
	}
	return k, nil
}

func newDPoPKey(pub ed25519.PublicKey) *DPoPKey {
	x := base64.RawURLEncoding.EncodeToString(pub)
	h := `{"typ":"dpop+jwt","alg":"EdDSA","jwk":{"kty":"OKP","crv":"Ed25519","x":"` + x + `"}}`
	return &DPoPKey{header: base64.RawURLEncoding.EncodeToString([]byte(h)), x: x, now: time.Now}
}

func (k *DPoPKey) signErr(err error) error {
	return keyStoreErr("key store could not sign a DPoP proof for agent "+strconv.Quote(k.agentID), err)
}

// Proof mints a proof for a request with the given method (sent as is,
// e.g. "POST") and URL; the URL's query and fragment are not part of the
// proof. A non-empty accessToken adds its ath claim. An empty method or a
// URL that is not absolute is a *ValidationError, and so is a DPoPKey not
// made by NewDPoPKey or NewDPoPKeyWithKeyStore (a nil or zero one).
func (k *DPoPKey) Proof(ctx context.Context, method, url, accessToken string) (string, error) {
	if k == nil || k.now == nil {
		return "", validationErr("DPoP: the DPoPKey holds no key; make it with NewDPoPKey or NewDPoPKeyWithKeyStore")
	}
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

// prefixFor returns the start of the proofs for method and url, encoding
// it when they differ from the last ones. An empty method or a URL that is
// not absolute is a *ValidationError.
func (k *DPoPKey) prefixFor(method, url string) (*dpopPrefix, error) {
	if p := k.prefix.Load(); p != nil && p.method == method && p.url == url {
		return p, nil
	}
	if method == "" {
		return nil, validationErr("DPoP: missing required method")
	}
	htu := htuOf(url)
	if i := strings.Index(htu, "://"); i <= 0 || i+3 == len(htu) {
		return nil, validationErr("DPoP: the URL must be absolute")
	}
	head := append(make([]byte, 0, 32+len(method)+len(htu)), `{"htm":`...)
	head = appendJSONString(head, method)
	head = append(head, `,"htu":`...)
	head = appendJSONString(head, htu)
	head = append(head, `,"iat":`...)
	n := len(head) / 3 * 3
	in := make([]byte, 0, len(k.header)+1+b64.EncodedLen(n))
	in = append(in, k.header...)
	in = append(in, '.')
	in = b64.AppendEncode(in, head[:n])
	p := &dpopPrefix{method: method, url: url, input: string(in), rest: string(head[n:])}
	k.prefix.Store(p)
	return p, nil
}

// mintATH mints a proof with a precomputed ath (nil for none). Only the
// payload's tail (iat, jti, ath) is encoded per proof; the signing input
// is written on the stack. With a key held in memory the signature is
// too, and the proof's string is the one allocation.
func (k *DPoPKey) mintATH(ctx context.Context, now time.Time, method, url string, ath []byte) (string, error) {
	pre, err := k.prefixFor(method, url)
	if err != nil {
		return "", err
	}
	var jti [16]byte
	if err := k.readJTI(jti[:]); err != nil {
		return "", err
	}
	var tailBuf [128]byte
	tail := append(tailBuf[:0], pre.rest...)
	tail = strconv.AppendInt(tail, now.Unix(), 10)
	tail = append(tail, `,"jti":"`...)
	tail = hex.AppendEncode(tail, jti[:])
	if ath != nil {
		tail = append(tail, `","ath":"`...)
		tail = append(tail, ath...)
	}
	tail = append(tail, `"}`...)
	var inBuf [768]byte
	in := append(inBuf[:0], pre.input...)
	in = b64.AppendEncode(in, tail)

	var priv ed25519.PrivateKey
	if k.priv != nil {
		priv = k.priv()
	}
	if k.mem != nil {
		if priv, err = k.mem.key(k.agentID); err != nil {
			return "", k.signErr(err)
		}
	}
	if priv != nil {
		return joinProof(in, ed25519.Sign(priv, in)), nil
	}
	// The signer gets a copy of the signing input, without spare capacity,
	// so that nothing it does with it can change the proof.
	data := make([]byte, len(in))
	copy(data, in)
	sig, err := k.sign(ctx, data)
	if err != nil {
		return "", err
	}
	if len(sig) != ed25519.SignatureSize {
		return "", keyStoreErr("DPoP signature", fmt.Errorf("%d bytes, not an Ed25519 signature", len(sig)))
	}
	return joinProof(in, sig), nil
}

// jtiBytes hands out the random bytes of jtis, read from crypto/rand 512
// at a time: one read per 32 proofs rather than one each. A jti need be
// unpredictable and unique, not secret (it travels in the proof).
var jtiBytes = jtiPool{off: jtiPoolSize, fill: rand.Read}

const jtiPoolSize = 512

type jtiPool struct {
	fill func([]byte) (int, error) // crypto/rand's Read unless a test sets it
	mu   sync.Mutex
	buf  [jtiPoolSize]byte
	off  int // bytes handed out
}

// read fills b (at most jtiPoolSize bytes) with bytes no other read gets.
// When crypto/rand fails (Go 1.24 and later crash instead; older ones
// return the error), nothing is handed out and the next read tries again.
func (p *jtiPool) read(b []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.off+len(b) > len(p.buf) {
		if _, err := p.fill(p.buf[:]); err != nil {
			return err
		}
		p.off = 0
	}
	p.off += copy(b, p.buf[p.off:])
	return nil
}

// readJTI fills b with the jti's random bytes.
func (k *DPoPKey) readJTI(b []byte) error {
	var err error
	if k.rand == nil {
		err = jtiBytes.read(b)
	} else {
		// Read through a heap copy: handing b to an interface would move
		// it, and every caller's buffer with it, to the heap.
		c := make([]byte, len(b))
		_, err = io.ReadFull(k.rand, c)
		copy(b, c)
	}
	if err != nil {
		return NewError(CodeValidation, "DPoP: reading random bytes: "+err.Error(), err)
	}
	return nil
}

// joinProof returns in "." base64url(sig) in one allocation.
func joinProof(in, sig []byte) string {
	var enc [86]byte // b64.EncodedLen(ed25519.SignatureSize)
	var sb strings.Builder
	sb.Grow(len(in) + 1 + len(enc))
	sb.Write(in)
	sb.WriteByte('.')
	b64.Encode(enc[:], sig)
	sb.Write(enc[:])
	return sb.String()
}
