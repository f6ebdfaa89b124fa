package agenttrust

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
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
			if err == nil {
				t.Fatal("no error")
			}
			var ae *AgentTrustError
			if !errors.As(err, &ae) {
				t.Fatalf("not an *AgentTrustError: %T", err)
			}
			if ae.Status != tc.status || ae.Code != tc.want.code || ae.Message != tc.want.msg || ae.RequestID != "req-"+tc.name ||
				string(ae.Body) != tc.body || ae.RetryAfter != tc.want.retry {
				t.Errorf("got status %d code %q msg %q rid %q body %q retry %v", ae.Status, ae.Code, ae.Message, ae.RequestID, ae.Body, ae.RetryAfter)
			}
			if !reflect.DeepEqual(ae.Details, tc.want.details) {
				t.Errorf("details %#v, want %#v", ae.Details, tc.want.details)
			}
			onlySentinel(t, err, tc.want.sentinel)
			if !tc.kind(err) {
				t.Errorf("kind type: %T", err)
			}
			if !strings.Contains(err.Error(), tc.want.msg) {
				t.Errorf("Error() %q lacks the message", err)
			}
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
		if _, err := c.Agents.Create(ctxT(t), AgentCreateParams{Name: "x"}); err == nil {
			t.Errorf("%d: create followed the redirect", code)
		}
		_, err := c.Agents.Get(ctxT(t), "a1")
		var ae *AgentTrustError
		if !errors.As(err, &ae) || ae.Status != code || ae.Code != "HTTP_"+strconv.Itoa(code) {
			t.Errorf("%d: %v", code, err)
		}
	}
	if n := target.count(); n != 0 {
		t.Errorf("redirect target got %d requests (and the API key)", n)
	}
}

func TestNonJSONSuccessBodyIsDecodeError(t *testing.T) {
	srv := newRecServer(t, replyH(200, "<html>oops</html>", map[string]string{"X-Request-ID": "rid-9"}))
	c := newTestClient(t, srv.URL)
	_, err := c.Agents.Get(ctxT(t), "a1")
	wantDecode(t, err)
	var ae *AgentTrustError
	errors.As(err, &ae)
	if ae.Status != 200 || ae.RequestID != "rid-9" || string(ae.Body) != "<html>oops</html>" {
		t.Errorf("decode error lost response data: %+v", ae)
	}
	// Revoke does not decode its reply.
	if err := c.Agents.Revoke(ctxT(t), "a1", ""); err != nil {
		t.Errorf("revoke with a text reply: %v", err)
	}
}

func wantNetwork(t testing.TB, err error) *NetworkError {
	t.Helper()
	var ne *NetworkError
	if !errors.As(err, &ne) {
		t.Fatalf("err = %v (%T), want *NetworkError", err, err)
	}
	if ne.Status != 0 || ne.Code != CodeNetwork || !strings.HasPrefix(ne.Message, "Network error: ") {
		t.Errorf("network error fields: %d %q %q", ne.Status, ne.Code, ne.Message)
	}
	onlySentinel(t, err, ErrNetwork)
	return ne
}

// closedURL returns the URL of a loopback port that refuses connections.
func closedURL(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + l.Addr().String()
	l.Close()
	return u
}

func TestRefusedPort(t *testing.T) {
	c := newTestClient(t, closedURL(t))
	_, err := c.Agents.Get(ctxT(t), "a1")
	ne := wantNetwork(t, err)
	var op *net.OpError
	if !errors.As(err, &op) {
		t.Errorf("cause is not a *net.OpError: %v", ne.Err)
	}
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
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("errors.Is(err, DeadlineExceeded) false: %v", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("timeout took %v; the client timeout must bound retries too", el)
	}
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
	if !errors.Is(err, context.Canceled) {
		t.Errorf("errors.Is(err, Canceled) false: %v", err)
	}
	if n := srv.count(); n != 1 {
		t.Errorf("a cancelled call was retried: %d requests", n)
	}
	// An already-cancelled context sends nothing.
	_, err = c.Agents.Get(ctx, "a1")
	if !errors.Is(err, context.Canceled) || srv.count() != 1 {
		t.Errorf("cancelled ctx: %v, %d requests", err, srv.count())
	}
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
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cause: %v", err)
	}
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
	if err != nil {
		t.Fatal(err)
	}
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
	if ae.Status != 200 || ae.RequestID != "rid-big" {
		t.Errorf("oversized decode error: status %d request id %q", ae.Status, ae.RequestID)
	}
	if n := srv.count(); n != 1 {
		t.Errorf("oversized body retried: %d requests", n)
	}

	errBody := strings.Repeat("e", 2<<20)
	srv.setHandler(reply(500, errBody))
	_, err = c.Agents.Get(ctxT(t), "a1")
	if !errors.As(err, &ae) || ae.Status != 500 || len(ae.Body) != 1<<20 || string(ae.Body) != errBody[:1<<20] {
		t.Errorf("error body not truncated to 1 MiB: %d bytes", len(ae.Body))
	}
}

func TestNilContext(t *testing.T) {
	srv := newRecServer(t, reply(200, `{}`))
	c := newTestClient(t, srv.URL)
	//lint:ignore SA1012 checking that a nil context is an error, not a panic
	_, err := c.Health(nil) //nolint:staticcheck
	wantValidation(t, err)
	if srv.count() != 0 {
		t.Errorf("request sent")
	}
}

func TestBodilessPost(t *testing.T) {
	srv := newRecServer(t, reply(200, `{}`))
	c := newTestClient(t, srv.URL)
	for _, m := range []string{http.MethodPost, http.MethodPut} {
		if _, err := c.do(ctxT(t), &request{method: m, path: "/x"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.do(ctxT(t), &request{method: http.MethodDelete, path: "/x"}); err != nil {
		t.Fatal(err)
	}
	for _, r := range srv.requests() {
		checkHeaders(t, r, testKey)
		if r.ContentLength != 0 || len(r.Body) != 0 {
			t.Errorf("%s: body %q", r.Method, r.Body)
		}
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
			if err := cl.call(id); err != nil {
				t.Errorf("%s(%q): %v", cl.name, id, err)
				continue
			}
			r := srv.only(t)
			want := strings.Replace(cl.tmpl, "%s", esc, 1)
			if r.EscapedPath != want || r.RequestURI != want || r.RawQuery != "" {
				t.Errorf("%s(%q): server saw %q (URI %q), want %q", cl.name, id, r.EscapedPath, r.RequestURI, want)
			}
		}
		for _, id := range []string{"", ".", ".."} {
			srv.clear()
			err := cl.call(id)
			wantValidation(t, err)
			if srv.count() != 0 {
				t.Errorf("%s(%q) reached the server", cl.name, id)
			}
			if id == "" && !strings.Contains(err.Error(), "missing required") {
				t.Errorf("message %q does not name the parameter", err)
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
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 3*time.Second {
		t.Errorf("late caller deadline: %v after %v; want the 100 ms client timeout", err, time.Since(start))
	}

	c2 := newTestClient(t, srv.URL, WithTimeout(time.Hour), WithRetryPolicy(RetryPolicy{}))
	early, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	start = time.Now()
	_, err = c2.Health(early)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 3*time.Second {
		t.Errorf("early caller deadline: %v after %v", err, time.Since(start))
	}
}
