// Package tokenauth is the tool-provider side of AgentTrust tokens: a
// service that receives an agent's "at_" bearer token checks it by
// introspection at the gateway (POST /api/v1/agent-tokens/introspect).
// Verifier does the checking, with a short cache of positive answers;
// RequireToken wraps it as net/http middleware:
//
//	mux.Handle("/files", tokenauth.RequireToken(client,
//		tokenauth.WithTarget("files-service"),
//		tokenauth.WithRequiredScopes("files:read"),
//	)(filesHandler))
//
// The options of this package configure the verifier only; the
// *agenttrust.Client passed in carries the gateway connection (base and
// auth URLs, API key, timeout, retries). The Python SDK has no
// resource-server side: everything here is a Go addition.
package tokenauth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/internal/flight"
	"github.com/agenttrustid/agenttrust-go/internal/obshook"
	"github.com/agenttrustid/agenttrust-go/internal/optcheck"
	"github.com/agenttrustid/agenttrust-go/internal/strpack"
)

// Codes of the errors Verifier.Verify returns for a rejected token.
const (
	CodeInvalidToken      = "INVALID_TOKEN"
	CodeInsufficientScope = "INSUFFICIENT_SCOPE"
)

// Sentinels for the two ways a presented token is rejected. Gateway failures
// are neither: they keep the SDK's usual kinds (agenttrust.ErrNetwork, ...).
var (
	// ErrInvalidToken matches a token that is missing, malformed, unknown,
	// expired, revoked or not valid for the target.
	ErrInvalidToken = errors.New("agenttrust: invalid token")
	// ErrInsufficientScope matches an active token that lacks a required
	// scope.
	ErrInsufficientScope = errors.New("agenttrust: insufficient scope")
)

// Defaults of the introspection cache.
const (
	DefaultCacheMaxAge = 5 * time.Second
	DefaultCacheSize   = 4096
	// maxTokenLen bounds a presented token; longer ones are rejected before
	// any I/O (issued tokens are about 50 bytes).
	maxTokenLen = 4096
	// evictSample is how many entries a full cache inspects to pick a victim.
	evictSample = 32
)

// RejectedError is the error of Verifier.Verify for a token the
// gateway (or the verifier, for a malformed token) does not accept. Its Code
// is CodeInvalidToken or CodeInsufficientScope, so errors.Is matches
// ErrInvalidToken or ErrInsufficientScope accordingly, and agenttrust.ErrAgentTrust.
// Nothing in it contains the token.
type RejectedError struct {
	*agenttrust.AgentTrustError
	// Reasoning is the gateway's reason for an inactive token ("token
	// revoked", ...), or the verifier's for a malformed one; may be empty.
	// It is for the service's own logs: the middleware never sends it to
	// the caller, and never decides anything from it.
	Reasoning string
	// RequiredScopes are the verifier's required scopes (set for insufficient
	// scope only).
	RequiredScopes []string
	// MissingScope is a required scope the token lacks (set for
	// insufficient scope only).
	MissingScope string
	// Malformed reports that the verifier refused the token before any I/O
	// because it is not a bearer token (RFC 6750 b64token syntax, at most
	// 4096 bytes). The middleware answers such a request 400
	// invalid_request, never 401.
	Malformed bool
}

// Unwrap returns the embedded *agenttrust.AgentTrustError.
func (e *RejectedError) Unwrap() error { return e.AgentTrustError }

// Is matches ErrInvalidToken or ErrInsufficientScope by the error's code.
func (e *RejectedError) Is(target error) bool {
	switch target {
	case ErrInvalidToken:
		return e.Code == CodeInvalidToken
	case ErrInsufficientScope:
		return e.Code == CodeInsufficientScope
	}
	return false
}

// Option configures a Verifier (and so RequireToken). Options
// validate their input; an invalid one makes NewVerifier fail.
type Option func(*verifierConfig) error

type verifierConfig struct {
	target    string
	scopes    []string
	maxAge    time.Duration
	cacheSize int
	now       func() time.Time
	logger    *slog.Logger
	realm     string
}

// WithTarget sets the target sent with every introspection: the service the
// token is presented to. Empty (the default) sends null.
func WithTarget(target string) Option {
	return func(c *verifierConfig) error { c.target = target; return nil }
}

// WithRequiredScopes sets scopes the token must all carry. Each scope must be
// non-empty and consist of printable ASCII without spaces, quotes or
// backslashes (RFC 6749 §3.3). Duplicates are dropped; the order is kept.
func WithRequiredScopes(scopes ...string) Option {
	return func(c *verifierConfig) error {
		out := make([]string, 0, len(scopes))
		for _, s := range scopes {
			if !validScope(s) {
				return fmt.Errorf("WithRequiredScopes: invalid scope %q", s)
			}
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
		c.scopes = out
		return nil
	}
}

// WithCache sets how long a positive introspection answer may be reused
// (default DefaultCacheMaxAge); 0 disables the cache. An entry
// never outlives the token's expiry. See Verifier for the trade-off.
func WithCache(maxAge time.Duration) Option {
	return func(c *verifierConfig) error {
		if maxAge < 0 {
			return fmt.Errorf("WithCache: negative max age %v", maxAge)
		}
		c.maxAge = maxAge
		return nil
	}
}

// WithCacheSize bounds the number of cached answers (default
// DefaultCacheSize).
func WithCacheSize(n int) Option {
	return func(c *verifierConfig) error { return optcheck.PositiveSize("WithCacheSize", n, &c.cacheSize) }
}

// WithClock replaces time.Now for cache ages and expiries, for
// tests.
func WithClock(now func() time.Time) Option {
	return func(c *verifierConfig) error {
		if now == nil {
			return errors.New("WithClock: nil clock")
		}
		c.now = now
		return nil
	}
}

// WithLogger sets the logger for rejections (debug) and gateway
// failures (warning). Nil, the default, means the client's logger. Tokens
// are never logged.
func WithLogger(l *slog.Logger) Option {
	return func(c *verifierConfig) error { c.logger = l; return nil }
}

// WithRealm sets the realm of the WWW-Authenticate challenge (default
// "agenttrust"). It must be printable ASCII without quotes or backslashes.
func WithRealm(realm string) Option {
	return func(c *verifierConfig) error {
		if realm == "" || sanitizeQuoted(realm, len(realm)) != realm {
			return fmt.Errorf("WithRealm: invalid realm %q", realm)
		}
		c.realm = realm
		return nil
	}
}

// validScope reports whether s is a scope token: NQCHAR without space,
// quote or backslash, so that it fits a quoted challenge attribute as is.
func validScope(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if b := s[i]; b <= ' ' || b >= 0x7f || b == '"' || b == '\\' {
			return false
		}
	}
	return true
}

// Verifier checks agent tokens presented to a tool provider, by
// introspection (POST /api/v1/agent-tokens/introspect) with a fixed target
// and required scopes. A Verifier is safe for concurrent use; build one
// per route (target and scope set) and reuse it.
//
// # Cache
//
// Positive answers are cached for a short time (WithCache, default 5 s,
// bounded by WithCacheSize and never past the token's own expiry);
// negative answers and errors are never cached. This trades revocation
// latency for gateway load: a token revoked at the gateway keeps working at
// this service for up to the cache's max age, while a busy service makes one
// introspection per token and max age instead of one per request. Choose 0
// (no cache) where immediate revocation matters more than latency.
// Concurrent requests with the same uncached token share one introspection
// call. That call does not depend on any one request: it goes on when the
// request that started it ends (it is bounded by the client's timeout), and
// each request waits for it only as long as its own context allows.
//
// The cache is keyed by the SHA-256 of the token (with the target and the
// scopes), never by the token itself.
//
// # Failure
//
// A gateway that cannot be reached, or that answers with an error, never
// lets a request through: Verify returns the error, and the middleware
// answers 503.
type Verifier struct {
	client *agenttrust.Client
	cfg    verifierConfig
	// keyPrefix encodes target and scopes; the cache key is its SHA-256 with
	// the token appended.
	keyPrefix []byte
	// challenge is the start of every WWW-Authenticate value: `Bearer realm="..."`.
	challenge string
	// scopeAttr is `, scope="a b"` for the 403 challenge.
	scopeAttr string

	// flights collapses concurrent introspections of one key into one
	// call, detached from the requests' cancellation; each request waits
	// on its own ctx.
	flights flight.Group[[sha256.Size]byte, *agenttrust.IntrospectionResult]

	mu      sync.Mutex
	entries map[[sha256.Size]byte]cachedIntrospection
}

type cachedIntrospection struct {
	res   *agenttrust.IntrospectionResult // never handed out; callers get copies
	until time.Time
}

// NewVerifier returns a Verifier that introspects with client. A
// nil client or an invalid option is a *ValidationError.
func NewVerifier(client *agenttrust.Client, opts ...Option) (*Verifier, error) {
	if client == nil {
		return nil, validationErr("tokenauth.NewVerifier: nil *agenttrust.Client")
	}
	cfg := verifierConfig{
		maxAge:    DefaultCacheMaxAge,
		cacheSize: DefaultCacheSize,
		now:       time.Now,
		realm:     "agenttrust",
	}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, validationErr("invalid tokenauth configuration: " + err.Error())
		}
	}
	if cfg.logger == nil {
		cfg.logger = client.Logger()
	}
	v := &Verifier{
		client:    client,
		cfg:       cfg,
		challenge: `Bearer realm="` + cfg.realm + `"`,
		entries:   make(map[[sha256.Size]byte]cachedIntrospection),
	}
	v.flights.WaitErr = networkErr
	if len(cfg.scopes) > 0 {
		v.scopeAttr = `, scope="` + strings.Join(cfg.scopes, " ") + `"`
	}
	// Length-prefixed parts keep the encoding unambiguous. The scope set is
	// sorted so that the same set in another order gives the same key.
	v.keyPrefix = strpack.AppendString(v.keyPrefix, cfg.target)
	v.keyPrefix = strpack.AppendSet(v.keyPrefix, cfg.scopes)
	return v, nil
}

// cacheKey hashes the token with the target and scopes. Tokens are kept out
// of the cache in clear on purpose: a map key lives as long as the entry, so
// live bearer credentials would sit in the heap where a memory dump, a core
// file or a debugging endpoint could reveal them. A SHA-256 digest cannot be
// presented as a token, and its fixed size keeps the map cheap.
func (v *Verifier) cacheKey(token string) [sha256.Size]byte {
	var buf [256]byte
	b := append(buf[:0], v.keyPrefix...)
	b = append(b, token...)
	k := sha256.Sum256(b)
	clear(b) // do not leave the token in this stack (or heap) buffer
	return k
}

// RequiredScopes returns a copy of the scopes every accepted token must
// carry (WithRequiredScopes), in the order given.
func (v *Verifier) RequiredScopes() []string { return slices.Clone(v.cfg.scopes) }

// Verify introspects token and returns the gateway's answer for an active
// token that carries every required scope. The result is the caller's own
// copy. A token that is not accepted gives a *RejectedError matching
// ErrInvalidToken or ErrInsufficientScope; any other error means the
// gateway could not answer, and must not be read as an allow.
func (v *Verifier) Verify(ctx context.Context, token string) (*agenttrust.IntrospectionResult, error) {
	res, err := v.verify(ctx, token)
	if err != nil {
		return nil, err
	}
	return copyIntrospection(res), nil
}

// verify is Verify returning the shared result, which the caller must copy
// and never modify. It logs rejections (debug) and gateway failures
// (warning), never the token.
func (v *Verifier) verify(ctx context.Context, token string) (*agenttrust.IntrospectionResult, error) {
	if ctx == nil {
		return nil, validationErr("nil context")
	}
	res, err := v.lookup(ctx, token)
	if err == nil {
		return res, nil
	}
	var rej *RejectedError
	switch {
	case errors.As(err, &rej):
		v.cfg.logger.DebugContext(ctx, "agenttrust: token rejected", "code", rej.Code,
			"reason", rej.Reasoning, "missing_scope", rej.MissingScope, "target", v.cfg.target)
	case ctx.Err() != nil: // the caller went away
		v.cfg.logger.DebugContext(ctx, "agenttrust: token introspection abandoned", "error", err, "target", v.cfg.target)
	default:
		v.cfg.logger.WarnContext(ctx, "agenttrust: token introspection failed; refusing the request", "error", err, "target", v.cfg.target)
	}
	return nil, err
}

func (v *Verifier) lookup(ctx context.Context, token string) (*agenttrust.IntrospectionResult, error) {
	if reason := checkTokenSyntax(token); reason != "" {
		rej := v.rejectInvalid(reason)
		rej.Malformed = true
		return nil, rej
	}
	key := v.cacheKey(token)
	if res, ok := v.cached(key); ok {
		obshook.CacheLookup(v.client, ctx, string(agenttrust.CacheIntrospection), true)
		return res, nil // entries are never modified once stored
	}
	if v.cfg.maxAge > 0 {
		obshook.CacheLookup(v.client, ctx, string(agenttrust.CacheIntrospection), false)
	}
	return v.miss(ctx, key, token)
}

// miss joins or starts the introspection for key. It is a function of its
// own so that the closures, which escape, cost nothing on a hit.
func (v *Verifier) miss(ctx context.Context, key [sha256.Size]byte, token string) (*agenttrust.IntrospectionResult, error) {
	recheck := func() (*agenttrust.IntrospectionResult, bool) { return v.cached(key) }
	return v.flights.Do(ctx, key, recheck, func(ctx context.Context) (*agenttrust.IntrospectionResult, error) {
		return v.introspect(ctx, key, token)
	})
}

// cached returns the cached answer for key, dropping an expired one.
func (v *Verifier) cached(key [sha256.Size]byte) (*agenttrust.IntrospectionResult, bool) {
	if v.cfg.maxAge <= 0 {
		return nil, false
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if e, ok := v.entries[key]; ok {
		if v.cfg.now().Before(e.until) {
			return e.res, true
		}
		delete(v.entries, key)
	}
	return nil, false
}

// introspect makes the introspection call shared by the requests for key,
// and caches a positive answer before returning it.
func (v *Verifier) introspect(ctx context.Context, key [sha256.Size]byte, token string) (*agenttrust.IntrospectionResult, error) {
	res, err := v.client.Tokens.Introspect(ctx, agenttrust.TokenIntrospectParams{
		Token: token, Target: v.cfg.target, RequiredScopes: v.cfg.scopes,
	})
	if err == nil {
		err = v.decide(res, token)
	}
	if err != nil {
		return nil, err
	}
	if v.cfg.maxAge > 0 {
		v.mu.Lock()
		v.storeLocked(key, res) // res is not modified after this point
		v.mu.Unlock()
	}
	return res, nil
}

// decide turns a gateway answer into nil (accepted) or a rejection, from
// the structured fields only: an inactive token is an invalid token whatever
// its reasoning says (the reasoning is free text, kept for the logs), and an
// active token is short of scope only when its scopes lack a required one.
// A gateway that refuses a token for a missing required scope by answering
// inactive therefore gives an invalid token, not an insufficient scope.
func (v *Verifier) decide(res *agenttrust.IntrospectionResult, token string) error {
	if !res.Active {
		reason := redactSecret(res.Reasoning, token)
		if reason == "" {
			reason = "token is not active"
		}
		return v.rejectInvalid(reason)
	}
	for _, s := range v.cfg.scopes {
		if !slices.Contains(res.Scopes, s) {
			return v.rejectScope(s)
		}
	}
	return nil
}

func (v *Verifier) rejectInvalid(reason string) *RejectedError {
	return &RejectedError{
		AgentTrustError: &agenttrust.AgentTrustError{Code: CodeInvalidToken, Message: "Invalid token: " + reason, Details: map[string]any{}},
		Reasoning:       reason,
	}
}

func (v *Verifier) rejectScope(missing string) error {
	return &RejectedError{
		AgentTrustError: &agenttrust.AgentTrustError{Code: CodeInsufficientScope, Message: "Insufficient scope: missing " + missing, Details: map[string]any{}},
		RequiredScopes:  slices.Clone(v.cfg.scopes),
		MissingScope:    missing,
	}
}

// storeLocked caches a positive answer until the earlier of max age and the
// token's expiry. Answers without an expiry are not cached: the cache could
// not promise to stop before the token does.
func (v *Verifier) storeLocked(key [sha256.Size]byte, res *agenttrust.IntrospectionResult) {
	if res.ExpiresAt.IsZero() {
		return
	}
	now := v.cfg.now()
	until := now.Add(v.cfg.maxAge)
	if res.ExpiresAt.Before(until) {
		until = res.ExpiresAt
	}
	if !now.Before(until) {
		return
	}
	if _, exists := v.entries[key]; !exists && len(v.entries) >= v.cfg.cacheSize {
		v.evictLocked(now)
	}
	v.entries[key] = cachedIntrospection{res: res, until: until}
}

// evictLocked makes room for one entry by inspecting a sample of entries
// (map iteration starts at a random place): expired ones are dropped, and if
// none was, the sampled entry that expires soonest goes. The cost is bounded
// whatever the cache size.
func (v *Verifier) evictLocked(now time.Time) {
	var victim [sha256.Size]byte
	var soonest time.Time
	dropped, seen := false, 0
	for k, e := range v.entries {
		if !now.Before(e.until) {
			delete(v.entries, k)
			dropped = true
		} else if seen == 0 || e.until.Before(soonest) {
			victim, soonest = k, e.until
		}
		if seen++; seen >= evictSample {
			break
		}
	}
	if !dropped && seen > 0 {
		delete(v.entries, victim)
	}
}

// checkTokenSyntax returns why token cannot be a bearer token, or "". The
// syntax is RFC 6750's b64token.
func checkTokenSyntax(token string) string {
	if token == "" {
		return "empty token"
	}
	if len(token) > maxTokenLen {
		return "token too long"
	}
	i := 0
	for ; i < len(token); i++ {
		b := token[i]
		if ('a' <= b && b <= 'z') || ('A' <= b && b <= 'Z') || ('0' <= b && b <= '9') ||
			b == '-' || b == '.' || b == '_' || b == '~' || b == '+' || b == '/' {
			continue
		}
		break
	}
	if i == 0 {
		return "malformed token"
	}
	for ; i < len(token); i++ {
		if token[i] != '=' {
			return "malformed token"
		}
	}
	return ""
}

// copyIntrospection returns a copy sharing nothing mutable with r; up to four
// scopes live in the same allocation.
func copyIntrospection(r *agenttrust.IntrospectionResult) *agenttrust.IntrospectionResult {
	box := &struct {
		r   agenttrust.IntrospectionResult
		buf [4]string
	}{r: *r}
	box.r.Scopes, _ = strpack.Clone(box.buf[:], r.Scopes)
	return &box.r
}

// redactSecret removes secret from s, in case a gateway echoes the token in
// its reasoning.
func redactSecret(s, secret string) string {
	if len(secret) >= 4 && strings.Contains(s, secret) {
		return strings.ReplaceAll(s, secret, "[redacted]")
	}
	return s
}

type introspectionKey struct{}

// FromContext returns the introspection result RequireToken put
// in the request context, and whether there was one. The result is the
// request's own copy.
func FromContext(ctx context.Context) (*agenttrust.IntrospectionResult, bool) {
	r, ok := ctx.Value(introspectionKey{}).(*agenttrust.IntrospectionResult)
	return r, ok && r != nil
}

// introspectionContext carries the request's own copy of the result, in
// the same allocation as the context node: a cached request then costs one
// allocation less than context.WithValue plus a copy. It embeds its parent,
// so cancellation and other values pass through unchanged.
type introspectionContext struct {
	context.Context
	res agenttrust.IntrospectionResult
	buf [4]string
}

func (c *introspectionContext) Value(key any) any {
	if _, ok := key.(introspectionKey); ok {
		return &c.res
	}
	return c.Context.Value(key)
}

func (c *introspectionContext) String() string {
	return "agenttrust.introspectionContext" // never the result: context printing must stay harmless
}

// withIntrospection returns a child of parent holding a copy of r.
func withIntrospection(parent context.Context, r *agenttrust.IntrospectionResult) context.Context {
	c := &introspectionContext{Context: parent, res: *r}
	c.res.Scopes, _ = strpack.Clone(c.buf[:], r.Scopes)
	return c
}

// NewContext returns a copy of ctx carrying r, as RequireToken
// does; useful in tests of handlers written for the middleware.
func NewContext(ctx context.Context, r *agenttrust.IntrospectionResult) context.Context {
	return context.WithValue(ctx, introspectionKey{}, r)
}

// RequireToken returns net/http middleware that admits only requests with
// an active AgentTrust token carrying the required scopes, introspected by
// client with the options' target and scopes. Build one per route when
// routes need different targets or scopes:
//
//	mux.Handle("/tools/read", tokenauth.RequireToken(client, tokenauth.WithRequiredScopes("files:read"))(readHandler))
//
// The token is read from "Authorization: Bearer <token>". On success the
// handler runs with the introspection result in its request context
// (FromContext). Otherwise the answer is JSON
// {"error": ..., "error_description": ...} with a fixed description: it
// never echoes the token, nor the gateway's reasoning, which is logged at
// debug level instead. The status follows RFC 6750 §3.1 and is decided from
// the introspection's structured fields (active, scopes) only:
//
//   - no bearer credentials: 401 with a bare `Bearer realm="..."` challenge;
//   - a malformed request (more than one Authorization header, an empty or
//     malformed bearer token): 400, error="invalid_request";
//   - an inactive token (unknown, expired, revoked, wrong target, or refused
//     by the gateway for any other reason): 401, error="invalid_token";
//   - an active token whose scopes lack a required one: 403,
//     error="insufficient_scope" and the required scopes in the
//     challenge's scope attribute;
//   - the gateway unreachable or failing: 503, never an allow.
//
// The required scopes are also sent to the gateway. A gateway that refuses
// a token lacking one of them by answering inactive (as the fake gateway
// in agenttrusttest does) gets a 401, since nothing structured says the
// scope was the reason.
//
// Caching and its trade-off are described at Verifier. An invalid
// configuration (nil client, bad option) makes every request fail with 500,
// after logging the reason; use NewVerifier to see the error at start-up.
func RequireToken(client *agenttrust.Client, opts ...Option) func(http.Handler) http.Handler {
	v, err := NewVerifier(client, opts...)
	if err != nil {
		var logger *slog.Logger
		var cfg verifierConfig
		for _, o := range opts {
			if o != nil {
				_ = o(&cfg)
			}
		}
		if logger = cfg.logger; logger == nil && client != nil {
			logger = client.Logger()
		}
		return func(http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if logger != nil {
					logger.ErrorContext(r.Context(), "agenttrust: RequireToken is misconfigured; refusing the request", "error", err)
				}
				writeAuthError(w, http.StatusInternalServerError, "", "server_error", "token verification is misconfigured")
			})
		}
	}
	return v.Middleware
}

// Middleware wraps next so that it runs only for requests with an accepted
// token; see RequireToken.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, problem := bearerToken(r.Header)
		switch problem {
		case "":
		case problemMissing:
			v.cfg.logger.DebugContext(r.Context(), "agenttrust: request without bearer token", "status", http.StatusUnauthorized)
			writeAuthError(w, http.StatusUnauthorized, v.challenge, "unauthorized", "a bearer token is required")
			return
		default:
			v.cfg.logger.DebugContext(r.Context(), "agenttrust: malformed authorization header", "status", http.StatusBadRequest, "reason", problem)
			writeAuthError(w, http.StatusBadRequest,
				v.challenge+`, error="invalid_request", error_description="`+problem+`"`, "invalid_request", problem)
			return
		}
		res, err := v.verify(r.Context(), token)
		if err == nil {
			next.ServeHTTP(w, r.WithContext(withIntrospection(r.Context(), res)))
			return
		}
		var rej *RejectedError
		switch {
		case !errors.As(err, &rej):
			writeAuthError(w, http.StatusServiceUnavailable, "", "temporarily_unavailable", "token introspection is unavailable")
		case rej.Code == CodeInsufficientScope:
			writeAuthError(w, http.StatusForbidden,
				v.challenge+`, error="insufficient_scope", error_description="`+descInsufficientScope+`"`+v.scopeAttr,
				"insufficient_scope", descInsufficientScope)
		case rej.Malformed: // bearerToken checks the syntax first; kept for safety
			writeAuthError(w, http.StatusBadRequest,
				v.challenge+`, error="invalid_request", error_description="`+descMalformedToken+`"`, "invalid_request", descMalformedToken)
		default:
			writeAuthError(w, http.StatusUnauthorized,
				v.challenge+`, error="invalid_token", error_description="`+descInvalidToken+`"`, "invalid_token", descInvalidToken)
		}
	})
}

// The fixed error descriptions of the middleware's answers. The gateway's
// reasoning is never sent: the caller is not authenticated, and the
// reasoning may say more than it should (which agents exist, which targets
// an agent may use).
const (
	descInvalidToken      = "the token is not valid"
	descInsufficientScope = "the token lacks a required scope"
	descMalformedToken    = "the bearer token is malformed"
)

const problemMissing = "missing"

// bearerToken extracts the token of an "Authorization: Bearer <token>"
// header. problem is "" on success, problemMissing when there are no bearer
// credentials (no header, or another scheme: RFC 6750 §3.1 wants a bare
// challenge then), or a description of what is malformed.
func bearerToken(h http.Header) (token, problem string) {
	vals := h["Authorization"]
	switch len(vals) {
	case 0:
		return "", problemMissing
	case 1:
	default:
		return "", "more than one Authorization header"
	}
	v := strings.Trim(vals[0], " \t")
	if v == "" {
		return "", problemMissing
	}
	scheme, rest, _ := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", problemMissing
	}
	rest = strings.TrimLeft(rest, " ")
	if rest == "" {
		return "", "the bearer token is empty"
	}
	if reason := checkTokenSyntax(rest); reason != "" {
		return "", descMalformedToken
	}
	return rest, ""
}

// writeAuthError writes a JSON error. challenge, when non-empty, becomes the
// WWW-Authenticate header. The texts never contain the token.
func writeAuthError(w http.ResponseWriter, status int, challenge, code, desc string) {
	h := w.Header()
	if challenge != "" {
		h.Set("WWW-Authenticate", challenge)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(map[string]string{"error": code, "error_description": desc}); err != nil {
		body.Reset() // cannot happen with two strings
		body.WriteString(`{"error":"` + code + `"}`)
	}
	w.WriteHeader(status)
	_, _ = w.Write(bytes.TrimSuffix(body.Bytes(), []byte("\n")))
}

// validationErr is a configuration or input error found before any I/O; it
// matches agenttrust.ErrValidation like the client's own.
func validationErr(message string) error {
	return agenttrust.NewError(agenttrust.CodeValidation, message, nil)
}

// networkErr is a caller's context ending while it waited for another
// caller's introspection; it matches agenttrust.ErrNetwork, as the
// introspection call itself would.
func networkErr(cause error) error {
	return agenttrust.NewError(agenttrust.CodeNetwork, "Network error: "+cause.Error(), cause)
}

// sanitizeQuoted keeps the characters RFC 6750 allows in error_description
// (%x20-21 / %x23-5B / %x5D-7E: printable ASCII without '"' and '\') and
// cuts the result to max bytes.
func sanitizeQuoted(s string, max int) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < max; i++ {
		if c := s[i]; c >= 0x20 && c <= 0x7e && c != '"' && c != '\\' {
			b.WriteByte(c)
		}
	}
	return b.String()
}
