package agenttrust

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStatusMapping(t *testing.T) {
	type want struct {
		code, msg string
		sentinel  error
		details   map[string]any
		retry     time.Duration
	}
	cases := []struct {
		name   string
		status int
		body   string
		hdr    map[string]string
		want   want
		kind   func(error) bool
	}{
		{"400 plain text", 400, "plain text error", nil,
			want{CodeValidation, "plain text error", ErrValidation, map[string]any{"message": "plain text error"}, 0},
			func(e error) bool { var x *ValidationError; return errors.As(e, &x) }},
		{"401 message", 401, `{"message":"Invalid credentials"}`, nil,
			want{CodeAuthFailed, "Invalid credentials", ErrAuthentication, map[string]any{"message": "Invalid credentials"}, 0},
			func(e error) bool { var x *AuthenticationError; return errors.As(e, &x) }},
		{"403 error string", 403, `{"error":"policy forbids"}`, nil,
			want{CodeAuthDenied, "policy forbids", ErrAuthorization, map[string]any{"error": "policy forbids"}, 0},
			func(e error) bool { var x *AuthorizationError; return errors.As(e, &x) }},
		{"404 empty", 404, "", nil,
			want{CodeNotFound, "Resource not found", ErrNotFound, map[string]any{}, 0},
			func(e error) bool { var x *NotFoundError; return errors.As(e, &x) }},
		{"409 default", 409, `{}`, nil,
			want{"HTTP_409", "HTTP 409 error", nil, map[string]any{}, 0},
			func(e error) bool { _, ok := e.(*AgentTrustError); return ok }},
		{"429 retry-after", 429, `{"error":"slow down"}`, map[string]string{"Retry-After": "7"},
			want{CodeRateLimited, "slow down", ErrRateLimited, map[string]any{"error": "slow down"}, 7 * time.Second},
			func(e error) bool { var x *RateLimitError; return errors.As(e, &x) && x.RetryAfter == 7*time.Second }},
		{"429 bad retry-after", 429, ``, map[string]string{"Retry-After": "soon"},
			want{CodeRateLimited, "HTTP 429 error", ErrRateLimited, map[string]any{}, 0},
			func(e error) bool { var x *RateLimitError; return errors.As(e, &x) }},
		{"500 nested error.message", 500, `{"error":{"code":-32000,"message":"db down"}}`, nil,
			want{"HTTP_500", "db down", nil, map[string]any{"error": map[string]any{"code": float64(-32000), "message": "db down"}}, 0},
			func(e error) bool { _, ok := e.(*AgentTrustError); return ok }},
		{"502 html", 502, "<html>bad gateway</html>\n", nil,
			want{"HTTP_502", "<html>bad gateway</html>", nil, map[string]any{"message": "<html>bad gateway</html>\n"}, 0},
			func(e error) bool { _, ok := e.(*AgentTrustError); return ok }},
		{"302 redirect", 302, "", map[string]string{"Location": "http://127.0.0.1:1/elsewhere"},
			want{"HTTP_302", "HTTP 302 error", nil, map[string]any{}, 0},
			func(e error) bool { _, ok := e.(*AgentTrustError); return ok }},
		{"JSON string body", 400, `"just a string"`, nil,
			want{CodeValidation, "just a string", ErrValidation, map[string]any{}, 0},
			func(e error) bool { var x *ValidationError; return errors.As(e, &x) }},
		{"JSON array body", 500, `[1,2]`, nil,
			want{"HTTP_500", "HTTP 500 error", nil, map[string]any{}, 0},
			func(e error) bool { _, ok := e.(*AgentTrustError); return ok }},
		{"JSON null body", 500, `null`, nil,
			want{"HTTP_500", "HTTP 500 error", nil, map[string]any{}, 0},
			func(e error) bool { _, ok := e.(*AgentTrustError); return ok }},
		{"empty message falls to error", 400, `{"message":"","error":"second"}`, nil,
			want{CodeValidation, "second", ErrValidation, map[string]any{"message": "", "error": "second"}, 0},
			func(e error) bool { return true }},
		{"non-string message", 400, `{"message":{"x":1}}`, nil,
			want{CodeValidation, "Validation failed", ErrValidation, map[string]any{"message": map[string]any{"x": float64(1)}}, 0},
			func(e error) bool { return true }},
		{"whitespace body", 500, "  \n ", nil,
			want{"HTTP_500", "HTTP 500 error", nil, map[string]any{}, 0},
			func(e error) bool { return true }},
	}
	srv := newRecServer(t, nil)
	c := newTestClient(t, srv.URL, WithRetryPolicy(RetryPolicy{}))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{"X-Request-ID": "req-" + tc.name}
			for k, v := range tc.hdr {
				hdr[k] = v
			}
			srv.setHandler(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range hdr {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			})
			_, err := c.Agents.Get(ctxT(t), "a1")
			require.Error(t, err, "no error")
			var ae *AgentTrustError
			require.ErrorAs(t, err, &ae, "not an *AgentTrustError: %T", err)
			assert.Equal(t, tc.status, ae.Status, "got status %d code %q msg %q rid %q body %q retry %v", ae.Status, ae.Code, ae.Message, ae.RequestID, ae.Body, ae.RetryAfter)
			assert.Equal(t, tc.want.code, ae.Code, "got status %d code %q msg %q rid %q body %q retry %v", ae.Status, ae.Code, ae.Message, ae.RequestID, ae.Body, ae.RetryAfter)
			assert.Equal(t, tc.want.msg, ae.Message, "got status %d code %q msg %q rid %q body %q retry %v", ae.Status, ae.Code, ae.Message, ae.RequestID, ae.Body, ae.RetryAfter)
			assert.Equal(t, "req-"+tc.name, ae.RequestID, "got status %d code %q msg %q rid %q body %q retry %v", ae.Status, ae.Code, ae.Message, ae.RequestID, ae.Body, ae.RetryAfter)
			assert.Equal(t, tc.body, string(ae.Body), "got status %d code %q msg %q rid %q body %q retry %v", ae.Status, ae.Code, ae.Message, ae.RequestID, ae.Body, ae.RetryAfter)
			assert.Equal(t, tc.want.retry, ae.RetryAfter, "got status %d code %q msg %q rid %q body %q retry %v", ae.Status, ae.Code, ae.Message, ae.RequestID, ae.Body, ae.RetryAfter)
			assert.Equal(t, tc.want.details, ae.Details, "details %#v, want %#v", ae.Details, tc.want.details)
			onlySentinel(t, err, tc.want.sentinel)
			assert.True(t, tc.kind(err), "kind type: %T", err)
			assert.Contains(t, err.Error(), tc.want.msg, "Error() %q lacks the message", err)
		})
	}
}

func TestRedirectNeverFollowed(t *testing.T) {
	target := newRecServer(t, reply(200, `{"id":"stolen"}`))
	for _, code := range []int{301, 302, 303, 307, 308} {
		srv := newRecServer(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+r.URL.Path, code)
		})
		c := newTestClient(t, srv.URL)
		_, err := c.Agents.Create(ctxT(t), AgentCreateParams{Name: "x"})
		assert.Error(t, err, "%d: create followed the redirect", code)
		_, err = c.Agents.Get(ctxT(t), "a1")
		var ae *AgentTrustError
		require.ErrorAs(t, err, &ae, "%d: %v", code, err)
		assert.Equal(t, code, ae.Status, "%d: %v", code, err)
		assert.Equal(t, "HTTP_"+strconv.Itoa(code), ae.Code, "%d: %v", code, err)
	}
	n := target.count()
	assert.Equal(t, 0, n, "redirect target got %d requests (and the API key)", n)
}

func TestNonJSONSuccessBodyIsDecodeError(t *testing.T) {
	srv := newRecServer(t, replyH(200, "<html>oops</html>", map[string]string{"X-Request-ID": "rid-9"}))
	c := newTestClient(t, srv.URL)
	_, err := c.Agents.Get(ctxT(t), "a1")
	wantDecode(t, err)
	var ae *AgentTrustError
	errors.As(err, &ae)
	assert.Equal(t, 200, ae.Status, "decode error lost response data: %+v", ae)
	assert.Equal(t, "rid-9", ae.RequestID, "decode error lost response data: %+v", ae)
	assert.Equal(t, "<html>oops</html>", string(ae.Body), "decode error lost response data: %+v", ae)
	// Revoke does not decode its reply.
	assert.NoError(t, c.Agents.Revoke(ctxT(t), "a1", ""), "revoke with a text reply")
}

func TestRefusedPort(t *testing.T) {
	c := newTestClient(t, closedURL(t))
	_, err := c.Agents.Get(ctxT(t), "a1")
	ne := wantNetwork(t, err)
	var op *net.OpError
	assert.ErrorAs(t, err, &op, "cause is not a *net.OpError: %v", ne.Err)
}

func TestHandlerNeverAnswers(t *testing.T) {
	release := make(chan struct{})
	srv := newRecServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	c := newTestClient(t, srv.URL, WithTimeout(150*time.Millisecond))
	start := time.Now()
	_, err := c.Actions.Check(context.Background(), ActionCheckParams{AgentID: "a1"})
	wantNetwork(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "errors.Is(err, DeadlineExceeded) false: %v", err)
	el := time.Since(start)
	assert.LessOrEqual(t, el, 3*time.Second, "timeout took %v; the client timeout must bound retries too", el)
}

func TestCallerCancellation(t *testing.T) {
	started := make(chan struct{}, 4)
	srv := newRecServer(t, func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-r.Context().Done()
	})
	c := newTestClient(t, srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	_, err := c.Agents.Get(ctx, "a1")
	wantNetwork(t, err)
	assert.ErrorIs(t, err, context.Canceled, "errors.Is(err, Canceled) false: %v", err)
	n := srv.count()
	assert.Equal(t, 1, n, "a cancelled call was retried: %d requests", n)
	// An already-cancelled context sends nothing.
	_, err = c.Agents.Get(ctx, "a1")
	assert.ErrorIs(t, err, context.Canceled, "cancelled ctx: %v, %d requests", err, srv.count())
	assert.Equal(t, 1, srv.count(), "cancelled ctx: %v, %d requests", err, srv.count())
}

// hijackClose answers with a header promising more body than it sends, then
// closes the connection.
func hijackClose(w http.ResponseWriter, _ *http.Request) {
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"allowed\":")
	buf.Flush()
	conn.Close()
}

func TestConnectionClosedMidResponse(t *testing.T) {
	srv := newRecServer(t, hijackClose)
	c := newTestClient(t, srv.URL, WithRetryPolicy(RetryPolicy{}))
	_, err := c.Actions.Check(ctxT(t), ActionCheckParams{AgentID: "a1"})
	wantNetwork(t, err)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "cause: %v", err)
	// A connection closed before any response.
	srv.setHandler(func(w http.ResponseWriter, _ *http.Request) {
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	})
	_, err = c.Agents.Get(ctxT(t), "a1")
	wantNetwork(t, err)
}

func TestGarbageResponses(t *testing.T) {
	// Raw garbage instead of HTTP, and malformed JSON at 2xx: errors, never panics.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			bufio.NewReader(conn).ReadString('\n')
			conn.Write([]byte("\x00\x01garbage not http\r\n\r\n"))
			conn.Close()
		}
	}()
	c := newTestClient(t, "http://"+l.Addr().String(), WithRetryPolicy(RetryPolicy{}))
	_, err = c.Agents.Get(ctxT(t), "a1")
	wantNetwork(t, err)
	l.Close()
	<-done

	srv := newRecServer(t, nil)
	c = newTestClient(t, srv.URL)
	for _, body := range []string{`{"id":`, `{"id":5}`, "\xff\xfe", `[{"id":"a"}]`, `"str"`} {
		srv.setHandler(reply(200, body))
		_, err := c.Agents.Get(ctxT(t), "a1")
		wantDecode(t, err)
	}
}

func TestOversizedBodies(t *testing.T) {
	big := strings.Repeat("x", 10<<20+1)
	srv := newRecServer(t, replyH(200, `{"id":"`+big+`"}`, map[string]string{"X-Request-ID": "rid-big"}))
	c := newTestClient(t, srv.URL)
	_, err := c.Agents.Get(ctxT(t), "a1")
	wantDecode(t, err)
	var ae *AgentTrustError
	errors.As(err, &ae)
	assert.Equal(t, 200, ae.Status, "oversized decode error: status %d request id %q", ae.Status, ae.RequestID)
	assert.Equal(t, "rid-big", ae.RequestID, "oversized decode error: status %d request id %q", ae.Status, ae.RequestID)
	n := srv.count()
	assert.Equal(t, 1, n, "oversized body retried: %d requests", n)

	errBody := strings.Repeat("e", 2<<20)
	srv.setHandler(reply(500, errBody))
	_, err = c.Agents.Get(ctxT(t), "a1")
	require.ErrorAs(t, err, &ae, "error body not truncated to 1 MiB: %d bytes", len(ae.Body))
	assert.Equal(t, 500, ae.Status, "error body not truncated to 1 MiB: %d bytes", len(ae.Body))
	require.Len(t, ae.Body, 1<<20, "error body not truncated to 1 MiB: %d bytes", len(ae.Body))
	assert.Equal(t, errBody[:1<<20], string(ae.Body), "error body not truncated to 1 MiB: %d bytes", len(ae.Body))
}

func TestNilContext(t *testing.T) {
	srv := newRecServer(t, reply(200, `{}`))
	c := newTestClient(t, srv.URL)
	//lint:ignore SA1012 checking that a nil context is an error, not a panic
	_, err := c.Health(nil) //nolint:staticcheck
	wantValidation(t, err)
	assert.Equal(t, 0, srv.count(), "request sent")
}

func TestBodilessPost(t *testing.T) {
	srv := newRecServer(t, reply(200, `{}`))
	c := newTestClient(t, srv.URL)
	for _, m := range []string{http.MethodPost, http.MethodPut} {
		_, err := c.do(ctxT(t), &request{method: m, path: "/x"}, nil)
		require.NoError(t, err)
	}
	_, err := c.do(ctxT(t), &request{method: http.MethodDelete, path: "/x"}, nil)
	require.NoError(t, err)
	for _, r := range srv.requests() {
		checkHeaders(t, r, testKey)
		assert.EqualValues(t, 0, r.ContentLength, "%s: body %q", r.Method, r.Body)
		assert.Empty(t, r.Body, "%s: body %q", r.Method, r.Body)
	}
}

func TestHostileIDs(t *testing.T) {
	srv := newRecServer(t, reply(200, `{}`))
	c := newTestClient(t, srv.URL)
	escaped := map[string]string{
		"../admin": "..%2Fadmin",
		"a/b":      "a%2Fb",
		"a?b=c":    "a%3Fb=c",
		"%2e%2e":   "%252e%252e",
		"a#b":      "a%23b",
		" ":        "%20",
		"a b/..":   "a%20b%2F..",
		"x;y":      "x%3By",
	}
	calls := []struct {
		name string
		tmpl string // the escaped path with %s for the id
		call func(id string) error
	}{
		{"Agents.Get", "/api/v1/agents/%s", func(id string) error { _, err := c.Agents.Get(ctxT(t), id); return err }},
		{"Agents.Revoke", "/api/v1/agents/%s/revoke", func(id string) error { return c.Agents.Revoke(ctxT(t), id, "") }},
		{"Sessions.GetSession", "/mcp/sessions/%s", func(id string) error { _, err := c.Sessions.GetSession(ctxT(t), id); return err }},
		{"Approvals.Approve", "/mcp/approvals/%s/approve", func(id string) error { _, err := c.Approvals.Approve(ctxT(t), id, ""); return err }},
		{"Approvals.Deny", "/mcp/approvals/%s/deny", func(id string) error { _, err := c.Approvals.Deny(ctxT(t), id, ""); return err }},
		{"Approvals.Get", "/mcp/approvals/%s", func(id string) error { _, err := c.Approvals.Get(ctxT(t), id); return err }},
	}
	for _, cl := range calls {
		for id, esc := range escaped {
			srv.clear()
			if err := cl.call(id); !assert.NoError(t, err, "%s(%q)", cl.name, id) {
				continue
			}
			r := srv.only(t)
			want := strings.Replace(cl.tmpl, "%s", esc, 1)
			assert.Equal(t, want, r.EscapedPath, "%s(%q): server saw %q (URI %q), want %q", cl.name, id, r.EscapedPath, r.RequestURI, want)
			assert.Equal(t, want, r.RequestURI, "%s(%q): server saw %q (URI %q), want %q", cl.name, id, r.EscapedPath, r.RequestURI, want)
			assert.Empty(t, r.RawQuery, "%s(%q): server saw %q (URI %q), want %q", cl.name, id, r.EscapedPath, r.RequestURI, want)
		}
		for _, id := range []string{"", ".", ".."} {
			srv.clear()
			err := cl.call(id)
			wantValidation(t, err)
			assert.Equal(t, 0, srv.count(), "%s(%q) reached the server", cl.name, id)
			if id == "" {
				assert.Contains(t, err.Error(), "missing required", "the message does not name the parameter")
			}
		}
	}
}

// The client timeout bounds a call even when the caller's own deadline is
// later, and a caller's earlier deadline wins over the timeout.
func TestTimeoutAgainstCallerDeadline(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv := newRecServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	c := newTestClient(t, srv.URL, WithTimeout(100*time.Millisecond), WithRetryPolicy(RetryPolicy{}))

	late, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.Health(late)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "late caller deadline: %v after %v; want the 100 ms client timeout", err, time.Since(start))
	assert.LessOrEqual(t, time.Since(start), 3*time.Second, "late caller deadline: %v after %v; want the 100 ms client timeout", err, time.Since(start))

	c2 := newTestClient(t, srv.URL, WithTimeout(time.Hour), WithRetryPolicy(RetryPolicy{}))
	early, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	start = time.Now()
	_, err = c2.Health(early)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "early caller deadline: %v after %v", err, time.Since(start))
	assert.LessOrEqual(t, time.Since(start), 3*time.Second, "early caller deadline: %v after %v", err, time.Since(start))
}

// idempotentCalls are the calls safe to repeat; each must be retried.
func idempotentCalls(c *Client) map[string]func(context.Context) error {
	return map[string]func(context.Context) error{
		"GET Agents.Get":    func(ctx context.Context) error { _, err := c.Agents.Get(ctx, "a1"); return err },
		"GET Agents.List":   func(ctx context.Context) error { _, err := c.Agents.List(ctx, AgentListParams{}); return err },
		"GET Health":        func(ctx context.Context) error { _, err := c.Health(ctx); return err },
		"GET Approvals.Get": func(ctx context.Context) error { _, err := c.Approvals.Get(ctx, "ap"); return err },
		"GET GetSession":    func(ctx context.Context) error { _, err := c.Sessions.GetSession(ctx, "s"); return err },
		"POST Actions.Check": func(ctx context.Context) error {
			_, err := c.Actions.Check(ctx, ActionCheckParams{AgentID: "a1"})
			return err
		},
		"POST Introspect": func(ctx context.Context) error {
			_, err := c.Tokens.Introspect(ctx, TokenIntrospectParams{Token: "at_x"})
			return err
		},
	}
}

// nonIdempotentCalls must never be re-sent once written.
func nonIdempotentCalls(c *Client) map[string]func(context.Context) error {
	return map[string]func(context.Context) error{
		"Agents.Create": func(ctx context.Context) error {
			_, err := c.Agents.Create(ctx, AgentCreateParams{Name: "n"})
			return err
		},
		"Agents.Revoke": func(ctx context.Context) error { return c.Agents.Revoke(ctx, "a1", "") },
		"Tokens.Issue": func(ctx context.Context) error {
			_, err := c.Tokens.Issue(ctx, TokenIssueParams{AgentID: "a1"})
			return err
		},
		"Tokens.Issue NoCache": func(ctx context.Context) error {
			_, err := c.Tokens.Issue(ctx, TokenIssueParams{AgentID: "a1", NoCache: true})
			return err
		},
		"Tokens.Revoke": func(ctx context.Context) error { return c.Tokens.Revoke(ctx, "at_x", "") },
		"Telemetry.Report": func(ctx context.Context) error {
			_, err := c.Telemetry.Report(ctx, TelemetryReportParams{AgentID: "a"})
			return err
		},
		"InitSession":    func(ctx context.Context) error { _, err := c.Sessions.InitSession(ctx, "a", "s"); return err },
		"InitAPISession": func(ctx context.Context) error { _, err := c.Sessions.InitAPISession(ctx, "t"); return err },
		"Approvals.Approve": func(ctx context.Context) error {
			_, err := c.Approvals.Approve(ctx, "ap", "")
			return err
		},
		"Approvals.Deny": func(ctx context.Context) error { _, err := c.Approvals.Deny(ctx, "ap", ""); return err },
	}
}

func TestRetryCounts(t *testing.T) {
	srv := newRecServer(t, nil)
	sl := &sleepRecorder{}
	c := newTestClient(t, srv.URL, withSleep(sl.sleep))
	statuses := map[int]int{429: 3, 502: 3, 503: 3, 504: 3, 500: 1, 400: 1, 404: 1, 409: 1, 501: 1}
	for name, call := range idempotentCalls(c) {
		for status, want := range statuses {
			srv.clear()
			srv.setHandler(reply(status, `{"error":"x"}`))
			err := call(ctxT(t))
			var ae *AgentTrustError
			require.ErrorAs(t, err, &ae, "%s %d: err %v", name, status, err)
			assert.Equal(t, status, ae.Status, "%s %d: err %v", name, status, err)
			n := srv.count()
			assert.Equal(t, want, n, "%s %d: %d requests, want %d", name, status, n, want)
			if want > 1 {
				reqs := srv.requests()
				for _, r := range reqs[1:] {
					assert.Equal(t, string(reqs[0].Body), string(r.Body), "%s: retry differs from the first attempt", name)
					assert.Equal(t, reqs[0].EscapedPath, r.EscapedPath, "%s: retry differs from the first attempt", name)
				}
			}
		}
		// A transport failure (connection dropped mid-response).
		srv.clear()
		srv.setHandler(hijackClose)
		wantNetwork(t, call(ctxT(t)))
		n := srv.count()
		assert.Equal(t, 3, n, "%s after a dropped connection: %d requests, want 3", name, n)
	}
}

func TestRetryThenSuccess(t *testing.T) {
	var n atomic.Int32
	srv := newRecServer(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) < 3 {
			w.WriteHeader(503)
			return
		}
		w.Write([]byte(`{"allowed":true}`))
	})
	c := newTestClient(t, srv.URL)
	res, err := c.Actions.Check(ctxT(t), ActionCheckParams{AgentID: "a1"})
	require.NoError(t, err, "res %+v err %v requests %d", res, err, srv.count())
	require.True(t, res.Allowed, "res %+v err %v requests %d", res, err, srv.count())
	require.Equal(t, 3, srv.count(), "res %+v err %v requests %d", res, err, srv.count())
}

func TestMaxRetriesZeroDisables(t *testing.T) {
	srv := newRecServer(t, reply(503, ""))
	c := newTestClient(t, srv.URL, WithRetryPolicy(RetryPolicy{MaxRetries: 0, InitialBackoff: time.Millisecond}))
	for name, call := range idempotentCalls(c) {
		srv.clear()
		err := call(ctxT(t))
		assert.Error(t, err, "%s: %d requests", name, srv.count())
		assert.Equal(t, 1, srv.count(), "%s: %d requests", name, srv.count())
	}
	srv.setHandler(hijackClose)
	srv.clear()
	_, err := c.Actions.Check(ctxT(t), ActionCheckParams{AgentID: "a1"})
	wantNetwork(t, err)
	assert.Equal(t, 1, srv.count(), "%d requests", srv.count())
}

func TestRetryAfterHonouredAndCapped(t *testing.T) {
	dateMade := time.Now()
	cases := []struct {
		header string
		want   time.Duration
	}{
		{"3", 3 * time.Second},
		{"0", 0},
		{"60", 10 * time.Second}, // DefaultRetryPolicy.MaxRetryAfter
		{time.Now().Add(5 * time.Second).UTC().Format(http.TimeFormat), 5 * time.Second},
	}
	for _, tc := range cases {
		for _, status := range []int{429, 503} {
			srv := newRecServer(t, replyH(status, "", map[string]string{"Retry-After": tc.header}))
			sl := &sleepRecorder{}
			c := newTestClient(t, srv.URL, withSleep(sl.sleep), WithTimeout(time.Minute))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // every wait fits
			c.Agents.Get(ctx, "a1")
			cancel()
			d := sl.got()
			require.Len(t, d, 2, "%d sleeps, want 2", len(d))
			for _, got := range d {
				// An HTTP date has one-second resolution, and the date was
				// made before this case ran.
				low := tc.want - time.Second - time.Since(dateMade)
				assert.LessOrEqual(t, got, tc.want, "Retry-After %q on %d: slept %v, want %v", tc.header, status, got, tc.want)
				assert.GreaterOrEqual(t, got, low, "Retry-After %q on %d: slept %v, want %v", tc.header, status, got, tc.want)
				if tc.header != cases[3].header {
					assert.Equal(t, tc.want, got, "Retry-After %q on %d", tc.header, status)
				}
			}
		}
	}
	// A custom cap.
	srv := newRecServer(t, replyH(429, "", map[string]string{"Retry-After": "30"}))
	sl := &sleepRecorder{}
	c := newTestClient(t, srv.URL, withSleep(sl.sleep),
		WithRetryPolicy(RetryPolicy{MaxRetries: 1, InitialBackoff: time.Millisecond, MaxBackoff: time.Second, MaxRetryAfter: 2 * time.Second}))
	c.Health(ctxT(t))
	d := sl.got()
	require.Len(t, d, 1, "custom cap: %v", d)
	assert.Equal(t, 2*time.Second, d[0], "custom cap: %v", d)
}

func TestBackoffGrowsWithJitter(t *testing.T) {
	srv := newRecServer(t, reply(502, ""))
	sl := &sleepRecorder{}
	p := RetryPolicy{MaxRetries: 5, InitialBackoff: 100 * time.Millisecond, MaxBackoff: 300 * time.Millisecond, MaxRetryAfter: time.Second}
	c := newTestClient(t, srv.URL, withSleep(sl.sleep), WithRetryPolicy(p))
	c.Health(ctxT(t))
	d := sl.got()
	caps := []time.Duration{100, 200, 300, 300, 300}
	require.Len(t, d, len(caps), "sleeps %v, requests %d", d, srv.count())
	require.Equal(t, 6, srv.count(), "sleeps %v, requests %d", d, srv.count())
	for i, got := range d {
		max := caps[i] * time.Millisecond
		assert.GreaterOrEqual(t, got, max/2, "sleep %d = %v, want in [%v, %v]", i, got, max/2, max)
		assert.LessOrEqual(t, got, max, "sleep %d = %v, want in [%v, %v]", i, got, max/2, max)
	}
}

func TestCancelDuringBackoffReturnsPromptly(t *testing.T) {
	srv := newRecServer(t, reply(503, ""))
	// The first attempt is done: the client is about to sleep its backoff.
	backoff := make(chan struct{}, 1)
	obs := &Observer{AttemptDone: func(context.Context, RequestInfo, AttemptResult) {
		select {
		case backoff <- struct{}{}:
		default:
		}
	}}
	// The real sleep: a 10 s backoff that the cancellation must cut short.
	c, err := New(WithBaseURL(srv.URL), WithObserver(obs), WithRetryPolicy(RetryPolicy{MaxRetries: 2, InitialBackoff: 10 * time.Second,
		MaxBackoff: 10 * time.Second, MaxRetryAfter: 10 * time.Second}))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-backoff
		cancel()
	}()
	start := time.Now()
	_, err = c.Actions.Check(ctx, ActionCheckParams{AgentID: "a1"})
	el := time.Since(start)
	assert.LessOrEqual(t, el, 2*time.Second, "returned after %v", el)
	wantNetwork(t, err)
	assert.ErrorIs(t, err, context.Canceled, "err %v does not wrap context.Canceled", err)
	assert.Equal(t, 1, srv.count(), "%d requests", srv.count())
}

func TestNonIdempotentNotResent(t *testing.T) {
	srv := newRecServer(t, nil)
	c := newTestClient(t, srv.URL)
	for name, call := range nonIdempotentCalls(c) {
		for _, h := range []http.HandlerFunc{reply(503, ""), reply(502, ""), reply(429, ""), hijackClose} {
			c.Tokens.ClearCache()
			srv.clear()
			srv.setHandler(h)
			assert.Error(t, call(ctxT(t)), "%s: no error", name)
			n := srv.count()
			assert.Equal(t, 1, n, "%s: sent %d times", name, n)
		}
	}
}

// failFirstDial fails its first round trip as a refused connection, before
// anything is written, then sends requests normally.
type failFirstDial struct {
	calls atomic.Int32
	next  *http.Transport
}

func (f *failFirstDial) RoundTrip(r *http.Request) (*http.Response, error) {
	if f.calls.Add(1) == 1 {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	}
	return f.next.RoundTrip(r)
}

func TestNonIdempotentResentWhenNothingWritten(t *testing.T) {
	srv := newRecServer(t, reply(201, `{"id":"a1","token":"at_1","expires_at":"2099-01-01T00:00:00Z"}`))
	c := newTestClient(t, srv.URL) // only for the list of calls
	for name := range nonIdempotentCalls(c) {
		srv.clear()
		rt := &failFirstDial{next: http.DefaultTransport.(*http.Transport).Clone()}
		c2 := newTestClient(t, srv.URL, WithHTTPClient(&http.Client{Transport: rt}))
		assert.NoError(t, nonIdempotentCalls(c2)[name](ctxT(t)), "%s", name)
		assert.EqualValues(t, 2, rt.calls.Load(), "%s: %d attempts, %d reached the server; want 2 and 1", name, rt.calls.Load(), srv.count())
		assert.Equal(t, 1, srv.count(), "%s: %d attempts, %d reached the server; want 2 and 1", name, rt.calls.Load(), srv.count())
		rt.next.CloseIdleConnections()
	}
	// A refused port is retried for a create and ends as a network error.
	closed := closedURL(t)
	sl := &sleepRecorder{}
	c3 := newTestClient(t, closed, withSleep(sl.sleep))
	_, err := c3.Agents.Create(ctxT(t), AgentCreateParams{Name: "x"})
	wantNetwork(t, err)
	assert.Len(t, sl.got(), 2, "refused create retried %d times, want 2", len(sl.got()))
}

// TestRetryAfterBeyondDeadline: a Retry-After that does not fit in what is
// left of the deadline ends the retries at once with the real answer (its
// status, RetryAfter and request id), not a NETWORK_ERROR after sleeping
// until the deadline.
func TestRetryAfterBeyondDeadline(t *testing.T) {
	for _, status := range []int{429, 503} {
		for _, viaTimeout := range []bool{false, true} {
			srv := newRecServer(t, replyH(status, `{"error":"slow down"}`, map[string]string{"Retry-After": "30", "X-Request-Id": "req-9"}))
			opts := []Option{}
			ctx := context.Background()
			if viaTimeout {
				opts = append(opts, WithTimeout(2*time.Second)) // the client timeout is the deadline
			} else {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
			}
			// The real sleep: the old behaviour slept for the whole deadline.
			c, err := New(append([]Option{WithBaseURL(srv.URL), WithAPIKey(testKey)}, opts...)...)
			require.NoError(t, err)
			start := time.Now()
			_, err = c.Actions.Check(ctx, ActionCheckParams{AgentID: "a1"})
			el := time.Since(start)
			assert.LessOrEqual(t, el, time.Second, "%d: returned after %v", status, el)
			var ae *AgentTrustError
			require.ErrorAs(t, err, &ae, "%d: err %v, want the HTTP error", status, err)
			require.Equal(t, status, ae.Status, "%d: err %v, want the HTTP error", status, err)
			require.Equal(t, "req-9", ae.RequestID, "%d: err %v, want the HTTP error", status, err)
			require.NotErrorIs(t, err, ErrNetwork, "%d: err %v, want the HTTP error", status, err)
			assert.Equal(t, 1, srv.count(), "%d: %d requests", status, srv.count())
			if status == 429 {
				var rl *RateLimitError
				require.ErrorAs(t, err, &rl, "429: err %#v, want a *RateLimitError with RetryAfter 30s", err)
				assert.Equal(t, 30*time.Second, rl.RetryAfter, "429: err %#v, want a *RateLimitError with RetryAfter 30s", err)
			}
		}
	}
	// A Retry-After that fits is waited for.
	srv := newRecServer(t, replyH(429, "", map[string]string{"Retry-After": "1"}))
	sl := &sleepRecorder{}
	c := newTestClient(t, srv.URL, withSleep(sl.sleep))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c.Agents.Get(ctx, "a1")
	d := sl.got()
	require.Len(t, d, 2, "fitting Retry-After: sleeps %v", d)
	assert.Equal(t, time.Second, d[0], "fitting Retry-After: sleeps %v", d)
}

// TestBackoffBeyondDeadline: the policy's own backoff never runs into the
// deadline. It is cut to half of what is left, and with less than one
// InitialBackoff left the last answer is returned at once.
func TestBackoffBeyondDeadline(t *testing.T) {
	srv := newRecServer(t, replyH(503, `{"error":"down"}`, map[string]string{"X-Request-Id": "req-3"}))
	sl := &sleepRecorder{}
	c := newTestClient(t, srv.URL, withSleep(sl.sleep)) // 250 ms initial backoff
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.Agents.Get(ctx, "a1")
	var ae *AgentTrustError
	require.ErrorAs(t, err, &ae, "err %v, %d requests, sleeps %v; want the 503 at once", err, srv.count(), sl.got())
	require.Equal(t, 503, ae.Status, "err %v, %d requests, sleeps %v; want the 503 at once", err, srv.count(), sl.got())
	require.Equal(t, "req-3", ae.RequestID, "err %v, %d requests, sleeps %v; want the 503 at once", err, srv.count(), sl.got())
	require.Equal(t, 1, srv.count(), "err %v, %d requests, sleeps %v; want the 503 at once", err, srv.count(), sl.got())
	require.Empty(t, sl.got(), "err %v, %d requests, sleeps %v; want the 503 at once", err, srv.count(), sl.got())

	srv.clear()
	sl = &sleepRecorder{}
	c = newTestClient(t, srv.URL, withSleep(sl.sleep),
		WithRetryPolicy(RetryPolicy{MaxRetries: 1, InitialBackoff: 4 * time.Second, MaxBackoff: 4 * time.Second, MaxRetryAfter: time.Second}))
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.Agents.Get(ctx, "a1")
	// The backoff, in [2s, 4s], is cut to at most half of the 5 s left.
	d := sl.got()
	require.Len(t, d, 1, "sleeps %v, want one in [2s, 2.5s]", d)
	assert.LessOrEqual(t, d[0], 2500*time.Millisecond, "sleeps %v, want one in [2s, 2.5s]", d)
	assert.GreaterOrEqual(t, d[0], 2*time.Second-100*time.Millisecond, "sleeps %v, want one in [2s, 2.5s]", d)
}
