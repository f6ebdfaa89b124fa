package agenttrust

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestNewRejectsBadOptions(t *testing.T) {
	cases := map[string][]Option{
		"schemeless host":       {WithBaseURL("gateway.example.com")},
		"schemeless host:port":  {WithBaseURL("localhost:8080")},
		"unparsable":            {WithBaseURL("http://[::1")},
		"bad port":              {WithBaseURL("http://host:port")},
		"ftp scheme":            {WithBaseURL("ftp://host")},
		"no host":               {WithBaseURL("http://")},
		"query":                 {WithBaseURL("http://host/?a=b")},
		"empty query":           {WithBaseURL("http://host/?")},
		"fragment":              {WithBaseURL("http://host/#frag")},
		"bad auth URL":          {WithAuthURL("auth.example.com")},
		"bad audit URL":         {WithAuditURL("http://h?x=1")},
		"negative timeout":      {WithTimeout(-time.Second)},
		"zero timeout":          {WithTimeout(0)},
		"nil HTTP client":       {WithHTTPClient(nil)},
		"negative retries":      {WithRetryPolicy(RetryPolicy{MaxRetries: -1})},
		"negative backoff":      {WithRetryPolicy(RetryPolicy{InitialBackoff: -1})},
		"line break in UA":      {WithUserAgentSuffix("x\r\nX-Evil: 1")},
		"zero cache size":       {WithTokenCacheSize(0)},
		"insecure custom trans": {WithHTTPClient(&http.Client{Transport: roundTripFunc(nil)}), WithInsecureSkipVerify()},
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := New(opts...)
			assert.Nil(t, c, "got a client")
			wantValidation(t, err)
			assert.Contains(t, err.Error(), "invalid configuration", "message %q", err)
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestNewDefaults(t *testing.T) {
	c, err := New(nil) // a nil option is ignored
	require.NoError(t, err)
	assert.Equal(t, "http://localhost:8080", c.BaseURL(), "defaults: %s %s %s", c.BaseURL(), c.AuthURL(), c.AuditURL())
	assert.Equal(t, c.BaseURL(), c.AuthURL(), "defaults: %s %s %s", c.BaseURL(), c.AuthURL(), c.AuditURL())
	assert.Equal(t, c.BaseURL(), c.AuditURL(), "defaults: %s %s %s", c.BaseURL(), c.AuthURL(), c.AuditURL())
	assert.Equal(t, DefaultTimeout, c.timeout, "timeout %v", c.timeout)
}

func TestURLDerivation(t *testing.T) {
	cases := []struct{ base, auth, audit string }{
		{"http://localhost:8080", "http://localhost:8080", "http://localhost:8080"},
		{"http://localhost:8081", "http://localhost:8082", "http://localhost:8084"},
		{"https://id.example.com:8081/prefix/", "https://id.example.com:8082/prefix", "https://id.example.com:8084/prefix"},
		{"https://id.example.com", "https://id.example.com", "https://id.example.com"},
		{"http://h:80810", "http://h:80810", "http://h:80810"},
		{"http://h:9000/x:8081", "http://h:9000/x:8081", "http://h:9000/x:8081"},
		{"http://[::1]:8081/p", "http://[::1]:8082/p", "http://[::1]:8084/p"},
		{"http://u@h:8081///", "http://u@h:8082", "http://u@h:8084"},
	}
	for _, tc := range cases {
		c, err := New(WithBaseURL(tc.base))
		require.NoError(t, err, "%s", tc.base)
		assert.Equal(t, tc.auth, c.AuthURL(), "%s: auth %s audit %s, want %s %s", tc.base, c.AuthURL(), c.AuditURL(), tc.auth, tc.audit)
		assert.Equal(t, tc.audit, c.AuditURL(), "%s: auth %s audit %s, want %s %s", tc.base, c.AuthURL(), c.AuditURL(), tc.auth, tc.audit)
		assert.False(t, strings.HasSuffix(c.BaseURL(), "/"), "%s: base %s keeps a trailing slash", tc.base, c.BaseURL())
	}
	// Explicit URLs win and are never derived from each other.
	c, err := New(WithBaseURL("http://h:8081"), WithAuthURL("https://auth.example//"))
	require.NoError(t, err)
	assert.Equal(t, "https://auth.example", c.AuthURL(), "auth %s audit %s", c.AuthURL(), c.AuditURL())
	assert.Equal(t, "http://h:8084", c.AuditURL(), "auth %s audit %s", c.AuthURL(), c.AuditURL())
}

func TestFromEnv(t *testing.T) {
	vars := []string{"AGENTTRUST_URL", "AGENTTRUST_BASE_URL", "AGENTTRUST_AUTH_URL", "AGENTTRUST_AUDIT_URL", "AGENTTRUST_API_KEY"}
	cases := []struct {
		name                  string
		env                   map[string]string
		base, auth, audit, ky string
	}{
		{"nothing", nil, "http://localhost:8080", "http://localhost:8080", "http://localhost:8080", ""},
		{"URL first", map[string]string{"AGENTTRUST_URL": "http://a:8081", "AGENTTRUST_BASE_URL": "http://b"},
			"http://a:8081", "http://a:8082", "http://a:8084", ""},
		{"empty URL falls back", map[string]string{"AGENTTRUST_URL": "", "AGENTTRUST_BASE_URL": "http://b/"},
			"http://b", "http://b", "http://b", ""},
		{"explicit services and key", map[string]string{"AGENTTRUST_URL": "http://g", "AGENTTRUST_AUTH_URL": "http://au/",
			"AGENTTRUST_AUDIT_URL": "http://ad", "AGENTTRUST_API_KEY": "sk_live_env"},
			"http://g", "http://au", "http://ad", "sk_live_env"},
		{"empty service vars derive", map[string]string{"AGENTTRUST_BASE_URL": "http://g:8081", "AGENTTRUST_AUTH_URL": "",
			"AGENTTRUST_AUDIT_URL": "", "AGENTTRUST_API_KEY": ""},
			"http://g:8081", "http://g:8082", "http://g:8084", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range vars {
				t.Setenv(v, "")
				os.Unsetenv(v)
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c, err := FromEnv()
			require.NoError(t, err)
			assert.Equal(t, tc.base, c.BaseURL(), "got %s %s %s key %q", c.BaseURL(), c.AuthURL(), c.AuditURL(), *c.apiKey.Load())
			assert.Equal(t, tc.auth, c.AuthURL(), "got %s %s %s key %q", c.BaseURL(), c.AuthURL(), c.AuditURL(), *c.apiKey.Load())
			assert.Equal(t, tc.audit, c.AuditURL(), "got %s %s %s key %q", c.BaseURL(), c.AuthURL(), c.AuditURL(), *c.apiKey.Load())
			assert.Equal(t, tc.ky, *c.apiKey.Load(), "got %s %s %s key %q", c.BaseURL(), c.AuthURL(), c.AuditURL(), *c.apiKey.Load())
			assert.Equal(t, DefaultTimeout, c.timeout, "timeout %v", c.timeout)
		})
	}
	t.Run("options win", func(t *testing.T) {
		t.Setenv("AGENTTRUST_URL", "http://env")
		t.Setenv("AGENTTRUST_API_KEY", "sk_env")
		c, err := FromEnv(WithBaseURL("http://opt"), WithAPIKey("sk_opt"))
		require.NoError(t, err)
		assert.Equal(t, "http://opt", c.BaseURL(), "got %s %q", c.BaseURL(), *c.apiKey.Load())
		assert.Equal(t, "sk_opt", *c.apiKey.Load(), "got %s %q", c.BaseURL(), *c.apiKey.Load())
	})
	t.Run("bad env URL", func(t *testing.T) {
		t.Setenv("AGENTTRUST_URL", "not a url")
		_, err := FromEnv()
		wantValidation(t, err)
	})
}

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "agenttrust.json")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

func TestFromConfig(t *testing.T) {
	t.Run("full", func(t *testing.T) {
		p := writeConfig(t, `{"base_url":"http://g:8081/","auth_url":"http://a","audit_url":null,"api_key":"sk_file",
			"timeout":1.5,"verify_tls":true,"unknown":{"x":1}}`)
		c, err := FromConfig(p)
		require.NoError(t, err)
		assert.Equal(t, "http://g:8081", c.BaseURL(), "got %s %s %s %q %v", c.BaseURL(), c.AuthURL(), c.AuditURL(), *c.apiKey.Load(), c.timeout)
		assert.Equal(t, "http://a", c.AuthURL(), "got %s %s %s %q %v", c.BaseURL(), c.AuthURL(), c.AuditURL(), *c.apiKey.Load(), c.timeout)
		assert.Equal(t, "http://g:8084", c.AuditURL(), "got %s %s %s %q %v", c.BaseURL(), c.AuthURL(), c.AuditURL(), *c.apiKey.Load(), c.timeout)
		assert.Equal(t, "sk_file", *c.apiKey.Load(), "got %s %s %s %q %v", c.BaseURL(), c.AuthURL(), c.AuditURL(), *c.apiKey.Load(), c.timeout)
		assert.Equal(t, 1500*time.Millisecond, c.timeout, "got %s %s %s %q %v", c.BaseURL(), c.AuthURL(), c.AuditURL(), *c.apiKey.Load(), c.timeout)
	})
	t.Run("empty object uses 8080", func(t *testing.T) {
		c, err := FromConfig(writeConfig(t, ` {} `))
		require.NoError(t, err)
		assert.Equal(t, "http://localhost:8080", c.BaseURL(), "got %s %s %v", c.BaseURL(), c.AuthURL(), c.timeout)
		assert.Equal(t, "http://localhost:8080", c.AuthURL(), "got %s %s %v", c.BaseURL(), c.AuthURL(), c.timeout)
		assert.Equal(t, DefaultTimeout, c.timeout, "got %s %s %v", c.BaseURL(), c.AuthURL(), c.timeout)
	})
	t.Run("options win", func(t *testing.T) {
		c, err := FromConfig(writeConfig(t, `{"base_url":"http://file","timeout":5}`), WithBaseURL("http://opt"), WithTimeout(time.Second))
		require.NoError(t, err)
		assert.Equal(t, "http://opt", c.BaseURL(), "got %s %v", c.BaseURL(), c.timeout)
		assert.Equal(t, time.Second, c.timeout, "got %s %v", c.BaseURL(), c.timeout)
	})
	bad := map[string]string{
		"invalid JSON":     `{"base_url":`,
		"empty file":       ``,
		"array":            `[{"base_url":"http://x"}]`,
		"string":           `"http://x"`,
		"null":             `null`,
		"number":           `42`,
		"base_url number":  `{"base_url":8080}`,
		"api_key bool":     `{"api_key":true}`,
		"timeout string":   `{"timeout":"30"}`,
		"timeout zero":     `{"timeout":0}`,
		"timeout negative": `{"timeout":-1}`,
		"timeout huge":     `{"timeout":1e300}`,
		"verify_tls str":   `{"verify_tls":"false"}`,
		"bad base URL":     `{"base_url":"localhost"}`,
	}
	for name, content := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := FromConfig(writeConfig(t, content))
			wantValidation(t, err)
		})
	}
	t.Run("missing file", func(t *testing.T) {
		_, err := FromConfig(filepath.Join(t.TempDir(), "nope.json"))
		wantValidation(t, err)
		assert.ErrorIs(t, err, os.ErrNotExist, "cause not kept: %v", err)
	})
	t.Run("timeout is used", func(t *testing.T) {
		block := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-block:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(block)
		c, err := FromConfig(writeConfig(t, fmt.Sprintf(`{"base_url":%q,"timeout":0.1}`, srv.URL)))
		require.NoError(t, err)
		start := time.Now()
		_, err = c.Health(context.Background())
		assert.ErrorIs(t, err, context.DeadlineExceeded, "err %v after %v", err, time.Since(start))
		assert.LessOrEqual(t, time.Since(start), 5*time.Second, "err %v after %v", err, time.Since(start))
	})
	t.Run("verify_tls false", func(t *testing.T) {
		srv := httptest.NewUnstartedServer(reply(200, `{"status":"ok"}`))
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below
		srv.StartTLS()
		defer srv.Close()
		var logs bytes.Buffer
		c, err := FromConfig(writeConfig(t, fmt.Sprintf(`{"base_url":%q,"verify_tls":false}`, srv.URL)),
			WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		require.NoError(t, err)
		_, err = c.Health(ctxT(t))
		require.NoError(t, err, "self-signed server with verify_tls false")
		assert.Contains(t, logs.String(), "level=WARN", "no TLS warning logged: %q", logs.String())
		assert.Contains(t, logs.String(), "TLS", "no TLS warning logged: %q", logs.String())
		// verify_tls true (the default) refuses the same server.
		c2, err := FromConfig(writeConfig(t, fmt.Sprintf(`{"base_url":%q,"verify_tls":true}`, srv.URL)),
			WithRetryPolicy(RetryPolicy{}))
		require.NoError(t, err)
		_, err = c2.Health(ctxT(t))
		assert.ErrorIs(t, err, ErrNetwork, "verified TLS against a self-signed cert: %v", err)
	})
}

func TestInsecureLogsWarningOnlyWhenAsked(t *testing.T) {
	var logs bytes.Buffer
	l := slog.New(slog.NewTextHandler(&logs, nil))
	_, err := New(WithLogger(l))
	require.NoError(t, err)
	assert.Equal(t, 0, logs.Len(), "logged without insecure: %q", logs.String())
	_, err = New(WithLogger(l), WithInsecureSkipVerify(), WithAPIKey(testKey))
	require.NoError(t, err)
	assert.Contains(t, logs.String(), "WARN", "log %q", logs.String())
	assert.NotContains(t, logs.String(), testKey, "log %q", logs.String())
}

func TestWithHTTPClientCopiesAndNeverMutates(t *testing.T) {
	redirected := newRecServer(t, reply(200, `{"status":"elsewhere"}`))
	srv := newRecServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, redirected.URL+"/health", http.StatusFound)
	})
	var calls atomic.Int32
	base := http.DefaultTransport.(*http.Transport).Clone()
	defer base.CloseIdleConnections()
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		calls.Add(1)
		return base.RoundTrip(r)
	})
	hc := &http.Client{Transport: rt, Timeout: time.Minute}
	c := newTestClient(t, srv.URL, WithHTTPClient(hc), WithTimeout(5*time.Second))
	_, err := c.Health(ctxT(t))
	var ae *AgentTrustError
	require.ErrorAs(t, err, &ae, "redirect: %v", err)
	require.Equal(t, 302, ae.Status, "redirect: %v", err)
	require.Equal(t, "HTTP_302", ae.Code, "redirect: %v", err)
	assert.EqualValues(t, 1, calls.Load(), "caller's transport used %d times, want 1", calls.Load())
	assert.Nil(t, hc.CheckRedirect, "caller's client was modified: %+v", hc)
	assert.Equal(t, time.Minute, hc.Timeout, "caller's client was modified: %+v", hc)
	assert.Nil(t, hc.Jar, "caller's client was modified: %+v", hc)
	assert.Equal(t, 0, redirected.count(), "redirect followed")
	// The caller's client still follows redirects on its own.
	resp, err := hc.Get(srv.URL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 1, redirected.count(), "caller's client no longer follows redirects")
}

func TestSetAPIKey(t *testing.T) {
	srv := newRecServer(t, reply(200, `{}`))
	c := newTestClient(t, srv.URL)
	_, err := c.Health(ctxT(t))
	require.NoError(t, err)
	c.SetAPIKey("sk_live_second")
	_, err = c.Health(ctxT(t))
	require.NoError(t, err)
	c.SetAPIKey("")
	_, err = c.Health(ctxT(t))
	require.NoError(t, err)
	r := srv.requests()
	checkHeaders(t, r[0], testKey)
	checkHeaders(t, r[1], "sk_live_second")
	checkHeaders(t, r[2], "")
}

func TestUserAgentSuffix(t *testing.T) {
	srv := newRecServer(t, reply(200, `{}`))
	c := newTestClient(t, srv.URL, WithUserAgentSuffix("my-agent/1.2"))
	_, err := c.Health(ctxT(t))
	require.NoError(t, err)
	got := srv.only(t).Header.Get("User-Agent")
	assert.Equal(t, wantUA+" my-agent/1.2", got, "User-Agent %q", got)
}

func TestHealthDecoding(t *testing.T) {
	srv := newRecServer(t, nil)
	c := newTestClient(t, srv.URL)
	for body, want := range map[string]int{`{"status":"ok","db":{"up":true}}`: 2, ``: 0, `null`: 0} {
		srv.setHandler(reply(200, body))
		m, err := c.Health(ctxT(t))
		require.NoError(t, err, "%q: %v", body, m)
		require.NotNil(t, m, "%q: %v %v", body, m, err)
		assert.Len(t, m, want, "%q: %v %v", body, m, err)
	}
	for _, body := range []string{`[1]`, `"ok"`, `ok`, `{"a":`} {
		srv.setHandler(reply(200, body))
		_, err := c.Health(ctxT(t))
		wantDecode(t, err)
	}
}

func TestSetAPIKeyWhileRequestsInFlight(t *testing.T) {
	keys := map[string]bool{testKey: true, "sk_live_rotated_1": true, "sk_live_rotated_2": true}
	var bad atomic.Int32
	srv := newRecServer(t, func(w http.ResponseWriter, r *http.Request) {
		if !keys[r.Header.Get("X-Api-Key")] { // every request carries one whole key
			bad.Add(1)
		}
		w.Write([]byte(`{"status":"ok"}`))
	})
	c := newTestClient(t, srv.URL)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			c.SetAPIKey([]string{"sk_live_rotated_1", "sk_live_rotated_2"}[i%2])
		}
	}()
	for i := 0; i < 50; i++ {
		_, err := c.Health(ctxT(t))
		require.NoError(t, err)
	}
	<-done
	assert.EqualValues(t, 0, bad.Load(), "%d requests with a torn or unknown key", bad.Load())
}

// An API key that cannot be a header value (a newline read from a file) is
// a configuration error at New, and, set later with SetAPIKey, a validation
// error on each call before any I/O; neither error shows the key.
func TestAPIKeyWithControlCharacter(t *testing.T) {
	const bad = "sk_live_SECRETKEY_1234\n"
	_, err := New(WithAPIKey(bad))
	wantValidation(t, err)
	assertNoSecret(t, "New", err, strings.TrimSpace(bad))

	srv := newRecServer(t, reply(200, `{}`))
	c := newTestClient(t, srv.URL)
	for _, k := range []string{bad, "sk\r\nX-Evil: 1", "sk\x00", "sk\x7f"} {
		c.SetAPIKey(k)
		_, err := c.Health(ctxT(t))
		wantValidation(t, err)
		assertNoSecret(t, "Health", err, strings.TrimSpace(bad))
	}
	n := srv.count()
	assert.Equal(t, 0, n, "%d requests sent", n)
	c.SetAPIKey("sk_with\ttab")
	_, err = c.Health(ctxT(t))
	require.NoError(t, err)
	got := srv.only(t).Header.Get("X-Api-Key")
	assert.Equal(t, "sk_with\ttab", got, "key sent %q", got)
	_, err = New(WithUserAgentSuffix("app/1\x00"))
	assert.Error(t, err, "a NUL in the User-Agent suffix accepted")
}

// Close releases every connection of a Client, and with them their
// goroutines, while the server is still up: 50 short-lived clients once
// left 150 goroutines alive for 90 s. A call in flight during Close and a
// call made after it leave nothing behind either.
func TestCloseReleasesConnections(t *testing.T) {
	release := make(chan struct{})
	slowArrived := make(chan struct{})
	srv := newRecServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(slowArrived)
			<-release
		}
		w.WriteHeader(200)
		_, _ = w.Write([]byte(`{}`))
	})
	free := releaser(t, release)
	ignore := goleak.IgnoreCurrent()

	var clients []*Client
	for i := 0; i < 20; i++ {
		c := newTestClient(t, srv.URL)
		clients = append(clients, c)
		var wg sync.WaitGroup
		for j := 0; j < 3; j++ { // concurrent calls: several connections per client
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := c.Health(ctxT(t))
				assert.NoError(t, err)
			}()
		}
		wg.Wait()
	}
	// A call in flight when Close runs.
	slow := clients[0]
	done := make(chan error, 1)
	go func() {
		_, err := slow.do(ctxT(t), &request{method: http.MethodGet, path: "/slow", idempotent: true}, nil)
		done <- err
	}()
	select {
	case <-slowArrived:
	case <-time.After(10 * time.Second):
		require.FailNow(t, "the slow request never reached the server")
	}
	for _, c := range clients {
		for i := 0; i < 2; i++ { // idempotent
			require.NoError(t, c.Close())
		}
	}
	free()
	require.NoError(t, <-done)
	// A call after Close still works and keeps no connection.
	_, err := clients[1].Health(ctxT(t))
	require.NoError(t, err)
	goleak.VerifyNone(t, ignore)
}

// A transport the caller passed in is the caller's to release: Close keeps
// its idle connections, so the caller's other users of it keep them too.
func TestCloseLeavesCallersTransport(t *testing.T) {
	srv := newRecServer(t, reply(200, `{}`))
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := newTestClient(t, srv.URL, WithHTTPClient(&http.Client{Transport: tr}))
	_, err := c.Health(ctxT(t))
	require.NoError(t, err)
	_ = c.Close()
	var reused bool
	ctx := httptrace.WithClientTrace(ctxT(t), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }})
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/health", nil)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.True(t, reused, "Close closed the idle connections of the caller's transport")
}
