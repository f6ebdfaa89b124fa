package agenttrust

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// verbs are the fmt verbs a secret must survive; %d and %x once dumped a
// Token's or an error's fields.
var verbs = []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%x"}

func assertNoSecret(t testing.TB, what string, v any, secrets ...string) {
	t.Helper()
	for _, f := range verbs {
		out := fmt.Sprintf(f, v)
		for _, s := range secrets {
			asBytes := strings.Trim(fmt.Sprint([]byte(s)), "[]") // how %d prints a []byte field
			assert.NotContains(t, out, s, "%s: %s reveals %q: %s", what, f, s, out)
			assert.NotContains(t, out, hex.EncodeToString([]byte(s)), "%s: %s reveals %q: %s", what, f, s, out)
			assert.NotContains(t, out, asBytes, "%s: %s reveals %q: %s", what, f, s, out)
		}
	}
}

func TestClientFormattingHidesKey(t *testing.T) {
	c, err := New(WithAPIKey(testKey), WithBaseURL("http://user:hunter2pass@gw.example:8081"))
	require.NoError(t, err)
	assertNoSecret(t, "client", c, testKey, "hunter2pass")
	assertNoSecret(t, "client in a struct", struct{ C *Client }{c}, testKey, "hunter2pass")
	assert.Contains(t, c.String(), "api key: set", "String() = %s", c)
	c.SetAPIKey("")
	assert.Contains(t, c.String(), "api key: none", "String() = %s", c)
}

func TestErrorsNeverRevealSecrets(t *testing.T) {
	const tok = "at_TOKENSECRET_42"
	echo := func(status int, form string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b := decodeMapLoose(r)
			secret := r.Header.Get("X-Api-Key") + " " + fmt.Sprint(b["token"])
			w.Header().Set("X-Request-ID", "rid-1")
			w.WriteHeader(status)
			fmt.Fprintf(w, form, secret)
		}
	}
	forms := []string{`{"message":"bad key %s"}`, `{"error":"bad %s"}`, `{"error":{"message":"nested %s"}}`, `plain %s`, `"%s"`}
	statuses := []int{400, 401, 403, 404, 409, 429, 500, 502}
	srv := newRecServer(t, nil)
	c := newTestClient(t, srv.URL, WithRetryPolicy(RetryPolicy{}))
	calls := map[string]func(context.Context) error{
		"Introspect": func(ctx context.Context) error {
			_, err := c.Tokens.Introspect(ctx, TokenIntrospectParams{Token: tok})
			return err
		},
		"Revoke":         func(ctx context.Context) error { return c.Tokens.Revoke(ctx, tok, "") },
		"InitAPISession": func(ctx context.Context) error { _, err := c.Sessions.InitAPISession(ctx, tok); return err },
		"Health":         func(ctx context.Context) error { _, err := c.Health(ctx); return err },
	}
	for name, call := range calls {
		for _, st := range statuses {
			for _, form := range forms {
				srv.setHandler(echo(st, form))
				err := call(ctxT(t))
				require.Error(t, err, "no error")
				what := fmt.Sprintf("%s %d %s", name, st, form)
				assertNoSecret(t, what, err, testKey, tok)
				var ae *AgentTrustError
				errors.As(err, &ae)
				assertNoSecret(t, what+" (base)", ae, testKey, tok)
				assertNoSecret(t, what+" (wrapped)", fmt.Errorf("ctx: %w", err), testKey, tok)
				assertNoSecret(t, what+" (details)", ae.Details, testKey, tok)
				assert.Contains(t, fmt.Sprintf("%#v", err), ae.Code, "%s: %%#v %#v", what, err)
				assert.Contains(t, ae.Message, "[redacted]", "%s: %%#v %#v", what, err)
			}
		}
	}
}

// decodeMapLoose decodes a request body into a map, nil when it is not JSON.
func decodeMapLoose(r *http.Request) map[string]any {
	var m map[string]any
	_ = json.NewDecoder(r.Body).Decode(&m)
	return m
}

func TestConfigErrorsHidePassword(t *testing.T) {
	bad := []string{
		"http://user:hunter2pass@host:badport",
		"http://user:hunter2pass@host/?q=1",
		"ftp://user:hunter2pass@host",
		"http://user:hunter2pass@[::1",
		"http://user:hunter2pass@host/#f",
		"user:hunter2pass@host",
		"http://us er:hunter2pass@host",
		"http://user:hunter2pass@ho st",
		"http://user:hunter2pass@host\x7f",
	}
	for _, u := range bad {
		u = strings.Replace(u, "user", "apiuserNAME", 1) // the user name is hidden too
		for _, opt := range []Option{WithBaseURL(u), WithAuthURL(u), WithAuditURL(u)} {
			_, err := New(opt)
			if !assert.Error(t, err, "%q accepted", u) {
				continue
			}
			assertNoSecret(t, u, err, "hunter2pass", "apiuserNAME")
			var ae *AgentTrustError
			if errors.As(err, &ae) {
				assertNoSecret(t, u+" (base)", ae, "hunter2pass", "apiuserNAME")
			}
		}
		p := writeConfig(t, fmt.Sprintf(`{"base_url":%q}`, u))
		_, err := FromConfig(p)
		if !assert.Error(t, err, "config %q accepted", u) {
			continue
		}
		assertNoSecret(t, "config "+u, err, "hunter2pass", "apiuserNAME")
	}
}

func TestNetworkErrorHidesPassword(t *testing.T) {
	c := newTestClient(t, strings.Replace(closedURL(t), "http://", "http://user:hunter2pass@", 1), WithRetryPolicy(RetryPolicy{}))
	_, err := c.Health(ctxT(t))
	wantNetwork(t, err)
	assertNoSecret(t, "network error", err, "hunter2pass", testKey)
}

// A Token and an error whose raw body echoes a secret print nothing secret
// under any verb, also when nested in a struct or a slice.
func TestTokenAndErrorFormattingHideSecrets(t *testing.T) {
	const secret = "at_0123456789abcdef0123456789abcdef"
	tok := Token{Token: secret, AgentID: "a1", Scopes: []string{"read"}}
	assertNoSecret(t, "token", tok, secret)
	assertNoSecret(t, "token pointer", &tok, secret)
	assertNoSecret(t, "tokens", []Token{tok}, secret)
	err := wrapKind(&AgentTrustError{Status: 401, Code: CodeAuthFailed, Message: "Authentication failed",
		Details: map[string]any{}, Body: []byte(`{"error":"bad ` + secret + `"}`)})
	assertNoSecret(t, "error", err, secret)
	var ae *AgentTrustError
	errors.As(err, &ae)
	assertNoSecret(t, "base error", ae, secret)
	assertNoSecret(t, "error in a struct", struct{ E error }{err}, secret)
}

// slogOutputs logs v under both standard handlers, at the top level and in
// a group, and returns what each wrote.
func slogOutputs(v any) map[string]string {
	out := map[string]string{}
	for name, mk := range map[string]func(io.Writer) slog.Handler{
		"json": func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) },
		"text": func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) },
	} {
		var buf bytes.Buffer
		l := slog.New(mk(&buf))
		l.Info("value", "v", v)
		l.Info("group", slog.Group("g", "v", v))
		l.With("w", v).Info("with")
		out[name] = buf.String()
	}
	return out
}

// Every type holding a secret hides it from log/slog (the JSON handler
// printed a Token's bearer in clear) and from every fmt verb, and still says
// which object it is.
func TestSecretsInSlogAndFmt(t *testing.T) {
	const tok = "at_SLOGSECRET_0123456789"
	const priv = "-----BEGIN PRIVATE KEY-----PRIVSECRET"
	token := Token{Token: tok, AgentID: "agent-7", TokenID: "tid-9", Scopes: []string{"read"}}
	intro := TokenIntrospectParams{Token: tok, Target: "svc-3", RequiredScopes: []string{"read"}}
	agent := Agent{ID: "agent-7", Name: "bot", PrivateKey: priv, PublicKey: "PUB"}
	c, err := New(WithAPIKey(testKey), WithBaseURL("http://user:hunter2pass@gw.example:8081"))
	require.NoError(t, err)
	cases := []struct {
		name    string
		v       any
		secrets []string
		shows   string
	}{
		{"Token", token, []string{tok}, "tid-9"},
		{"*Token", &token, []string{tok}, "tid-9"},
		{"TokenIntrospectParams", intro, []string{tok}, "svc-3"},
		{"*TokenIntrospectParams", &intro, []string{tok}, "svc-3"},
		{"Agent", agent, []string{priv, "PRIVSECRET"}, "agent-7"},
		{"*Agent", &agent, []string{priv, "PRIVSECRET"}, "agent-7"},
		{"*Client", c, []string{testKey, "hunter2pass"}, "gw.example"},
		// The secret-holding types of the other services, so that the audit
		// stays enforced in one place.
		{"FederationTokenParams", FederationTokenParams{Token: tok, IssuerHint: "iss-1"}, []string{tok}, "iss-1"},
		{"IDTokenResponse", IDTokenResponse{IDToken: tok, Token: tok, ExpiresIn: 77}, []string{tok}, "77"},
		{"StreamingCreateParams", StreamingCreateParams{Name: "dest-1", AuthToken: Ptr(tok)}, []string{tok}, "dest-1"},
		{"StreamingUpdateParams", StreamingUpdateParams{Name: Ptr("dest-2"), AuthToken: Ptr(tok)}, []string{tok}, "dest-2"},
		{"SIEMDestination", SIEMDestination{ID: "dest-3", AuthToken: tok}, []string{tok}, "dest-3"},
		{"*SIEMDestination", &SIEMDestination{ID: "dest-3", AuthToken: tok}, []string{tok}, "dest-3"},
		{"RequestOption", WithRequestHeader("X-Tenant-Token", tok), []string{tok}, "X-Tenant-Token"},
	}
	for _, tc := range cases {
		for handler, out := range slogOutputs(tc.v) {
			for _, s := range tc.secrets {
				assert.NotContains(t, out, s, "%s, slog %s handler, reveals %q:\n%s", tc.name, handler, s, out)
			}
			assert.Contains(t, out, tc.shows, "%s, slog %s handler, does not say %q:\n%s", tc.name, handler, tc.shows, out)
		}
		assertNoSecret(t, tc.name, tc.v, tc.secrets...)
		assertNoSecret(t, tc.name+" in a struct", struct{ V any }{tc.v}, tc.secrets...)
		s := fmt.Sprint(tc.v)
		assert.Contains(t, s, tc.shows, "%s prints %s", tc.name, s)
	}
}

// A proxy that echoes the API key or the request's token in X-Request-ID
// must not get it into error text, for error statuses, undecodable 2xx
// bodies and oversized 2xx bodies alike.
func TestRequestIDRedacted(t *testing.T) {
	const tok = "at_RIDSECRET_42"
	big := strings.Repeat(" ", 11<<20)
	srv := newRecServer(t, nil)
	c := newTestClient(t, srv.URL, WithRetryPolicy(RetryPolicy{}))
	for _, tc := range []struct {
		status int
		body   string
	}{{401, `{"message":"no"}`}, {500, "oops"}, {200, "not json"}, {200, `[` + big + `]`}} {
		srv.setHandler(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Request-ID", "rid-"+r.Header.Get("X-Api-Key")+"-"+tok)
			w.WriteHeader(tc.status)
			_, _ = io.WriteString(w, tc.body)
		})
		_, err := c.Tokens.Introspect(ctxT(t), TokenIntrospectParams{Token: tok})
		var ae *AgentTrustError
		require.ErrorAs(t, err, &ae, "%d: %v", tc.status, err)
		require.NotEmpty(t, ae.RequestID, "%d: %v", tc.status, err)
		what := fmt.Sprintf("status %d (%s)", tc.status, ae.Code)
		assertNoSecret(t, what, err, testKey, tok)
		assert.NotContains(t, ae.RequestID, testKey, "%s: RequestID %q", what, ae.RequestID)
		assert.NotContains(t, ae.RequestID, tok, "%s: RequestID %q", what, ae.RequestID)
		assert.True(t, strings.HasPrefix(ae.RequestID, "rid-"), "%s: RequestID %q", what, ae.RequestID)
	}
}

// The user info of a URL is hidden whole, user name included (a key put in
// the user part showed in String and in every network error), while the
// request still carries it as Basic credentials.
func TestURLUserInfoHidden(t *testing.T) {
	const user, pass = "apiuserSECRETNAME", "hunter2pass"
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dead := strings.Replace(closedURL(t), "http://", "http://"+user+":"+pass+"@", 1)
	c := newTestClient(t, dead, WithLogger(logger), WithRetryPolicy(RetryPolicy{MaxRetries: 1}))
	assertNoSecret(t, "client", c, user, pass)
	assert.Contains(t, c.String(), "xxxxx@127.0.0.1", "String() = %s", c)
	_, err := c.Health(ctxT(t))
	ne := wantNetwork(t, err)
	assertNoSecret(t, "network error", err, user, pass)
	assertNoSecret(t, "network error cause", ne.Err, user, pass)
	require.Contains(t, logs.String(), "retrying", "no retry logged: %s", logs.String())
	assert.NotContains(t, logs.String(), user, "retry log reveals user info: %s", logs.String())
	assert.NotContains(t, logs.String(), pass, "retry log reveals user info: %s", logs.String())

	for _, tc := range []struct{ name, url, user string }{
		{"user only", "http://" + user + "@", user},
		{"user and password", "http://" + user + ":" + pass + "@", user},
	} {
		srv := newRecServer(t, func(w http.ResponseWriter, r *http.Request) {
			u, p, _ := r.BasicAuth()
			w.WriteHeader(403)
			fmt.Fprintf(w, `{"message":"denied for %s:%s"}`, u, p)
		})
		c := newTestClient(t, strings.Replace(srv.URL, "http://", tc.url, 1), WithRetryPolicy(RetryPolicy{}))
		_, err := c.Health(ctxT(t))
		var ae *AuthorizationError
		require.ErrorAs(t, err, &ae, "%s: %v", tc.name, err)
		assertNoSecret(t, tc.name, err, user, pass)
		got := srv.only(t).Header.Get("Authorization")
		assert.NotEmpty(t, got, "%s: no Basic credentials sent", tc.name)
		assert.Contains(t, string(ae.Body), "denied for "+tc.user+":", "%s: server saw %s", tc.name, ae.Body)
		// An explicit Authorization header wins, as it does in net/http.
		srv.clear()
		_, _ = c.do(ctxT(t), &request{method: http.MethodGet, path: "/x", header: http.Header{"Authorization": {"Bearer b"}}}, nil)
		auth := srv.only(t).Header.Values("Authorization")
		require.Len(t, auth, 1, "%s: Authorization %q", tc.name, auth)
		assert.Equal(t, "Bearer b", auth[0], "%s: Authorization %q", tc.name, auth)
	}
}

// Error text is bounded although a server can send a 1 MiB message and a
// request id of any length; the fields keep everything.
func TestErrorTextBounded(t *testing.T) {
	msg := strings.Repeat("é", 1<<20) // 2 MiB of two-byte runes, cut at 1 MiB by the transport
	rid := strings.Repeat("r", 4<<20) // the review sent 4 MB
	srv := newRecServer(t, replyH(500, msg, map[string]string{"X-Request-ID": rid}))
	c := newTestClient(t, srv.URL, WithRetryPolicy(RetryPolicy{}))
	_, err := c.Health(ctxT(t))
	var ae *AgentTrustError
	require.ErrorAs(t, err, &ae, "%v", err)
	for _, s := range []string{err.Error(), ae.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%#v", err), fmt.Sprintf("%q", err)} {
		assert.LessOrEqual(t, len(s), 2*maxErrorMessage, "error text of %d bytes (valid UTF-8: %v): %.200s", len(s), utf8.ValidString(s), s)
		assert.True(t, utf8.ValidString(s), "error text of %d bytes (valid UTF-8: %v): %.200s", len(s), utf8.ValidString(s), s)
	}
	assert.Contains(t, err.Error(), "more bytes]", "cut not marked: %.300s", err.Error())
	require.Len(t, ae.Body, 1<<20, "fields lost data: body %d, message %d, request id %d", len(ae.Body), len(ae.Message), len(ae.RequestID))
	require.Len(t, ae.Message, 1<<20, "fields lost data: body %d, message %d, request id %d", len(ae.Body), len(ae.Message), len(ae.RequestID))
	assert.Equal(t, rid, ae.RequestID, "fields lost data: body %d, message %d, request id %d", len(ae.Body), len(ae.Message), len(ae.RequestID))
	short := wrapKind(&AgentTrustError{Code: CodeNotFound, Status: 404, Message: "agent not found", RequestID: "r-1"})
	got := short.Error()
	assert.Equal(t, "agenttrust: agent not found (code NOT_FOUND, status 404, request r-1)", got, "short error changed: %s", got)
}

// A JSON-RPC error in a 2xx reply is an error built from the body: it is
// redacted like the HTTP ones, message and details.
func TestJSONRPCErrorRedacted(t *testing.T) {
	srv := newRecServer(t, func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("X-Api-Key")
		w.Header().Set("X-Request-ID", "rid-"+key)
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":"1","error":{"code":-32000,"message":"bad key %s","data":{"echo":%q}}}`, key, key)
	})
	c := newTestClient(t, srv.URL)
	_, err := c.MCP.CallTool(ctxT(t), "srv-1", MCPCallToolParams{AgentID: "a", Method: "tools/list"})
	var rpc *JSONRPCError
	require.ErrorAs(t, err, &rpc, "err %v", err)
	require.Equal(t, -32000, rpc.RPCCode, "err %v", err)
	require.Equal(t, "rid-[redacted]", rpc.RequestID, "err %v", err)
	assertNoSecret(t, "JSON-RPC error", err, testKey)
	assertNoSecret(t, "JSON-RPC error details", rpc.Details, testKey)
	assert.NotContains(t, rpc.RPCMessage, testKey, "message %q, RPC message %q", rpc.Message, rpc.RPCMessage)
	assert.Equal(t, "bad key [redacted]", rpc.Message, "message %q, RPC message %q", rpc.Message, rpc.RPCMessage)
}
