package agenttrust

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
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
			if strings.Contains(out, s) || strings.Contains(out, hex.EncodeToString([]byte(s))) || strings.Contains(out, asBytes) {
				t.Errorf("%s: %s reveals %q: %s", what, f, s, out)
			}
		}
	}
}

func TestClientFormattingHidesKey(t *testing.T) {
	c, err := New(WithAPIKey(testKey), WithBaseURL("http://user:hunter2pass@gw.example:8081"))
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "client", c, testKey, "hunter2pass")
	assertNoSecret(t, "client in a struct", struct{ C *Client }{c}, testKey, "hunter2pass")
	if !strings.Contains(c.String(), "api key: set") {
		t.Errorf("String() = %s", c)
	}
	c.SetAPIKey("")
	if !strings.Contains(c.String(), "api key: none") {
		t.Errorf("String() = %s", c)
	}
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
				if err == nil {
					t.Fatal("no error")
				}
				what := fmt.Sprintf("%s %d %s", name, st, form)
				assertNoSecret(t, what, err, testKey, tok)
				var ae *AgentTrustError
				errors.As(err, &ae)
				assertNoSecret(t, what+" (base)", ae, testKey, tok)
				assertNoSecret(t, what+" (wrapped)", fmt.Errorf("ctx: %w", err), testKey, tok)
				assertNoSecret(t, what+" (details)", ae.Details, testKey, tok)
				if !strings.Contains(fmt.Sprintf("%#v", err), ae.Code) || !strings.Contains(ae.Message, "[redacted]") {
					t.Errorf("%s: %%#v %#v", what, err)
				}
			}
		}
	}
}

func decodeMapLoose(r *http.Request) map[string]any {
	var m map[string]any
	_ = jsonDecode(r, &m)
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
		for _, opt := range []Option{WithBaseURL(u), WithAuthURL(u), WithAuditURL(u)} {
			_, err := New(opt)
			if err == nil {
				t.Errorf("%q accepted", u)
				continue
			}
			assertNoSecret(t, u, err, "hunter2pass")
			var ae *AgentTrustError
			if errors.As(err, &ae) {
				assertNoSecret(t, u+" (base)", ae, "hunter2pass")
			}
		}
		p := writeConfig(t, fmt.Sprintf(`{"base_url":%q}`, u))
		_, err := FromConfig(p)
		if err == nil {
			t.Errorf("config %q accepted", u)
			continue
		}
		assertNoSecret(t, "config "+u, err, "hunter2pass")
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
