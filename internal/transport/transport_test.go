package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"5", 5 * time.Second, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{"999999999999", 24 * time.Hour, true},
		{"Sun, 01 Mar 2026 10:00:30 GMT", 30 * time.Second, true},
		{"Sun, 01 Mar 2026 09:00:00 GMT", 0, true},
		{"Sunday, 01-Mar-26 10:01:00 GMT", time.Minute, true},
	}
	for _, tc := range cases {
		got, ok := ParseRetryAfter(tc.in, now)
		assert.Equal(t, tc.want, got, "ParseRetryAfter(%q) = %v %v, want %v %v", tc.in, got, ok, tc.want, tc.ok)
		assert.Equal(t, tc.ok, ok, "ParseRetryAfter(%q) = %v %v, want %v %v", tc.in, got, ok, tc.want, tc.ok)
	}
}

type seen struct {
	mu   sync.Mutex
	reqs []*http.Request
	body [][]byte
}

func server(t *testing.T, h http.HandlerFunc) (*httptest.Server, *seen) {
	s := &seen{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, r)
		s.body = append(s.body, b)
		s.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, s
}

func (s *seen) n() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.reqs) }

func newT(sleeps *[]time.Duration, p RetryPolicy) *Transport {
	var mu sync.Mutex
	return New(Config{
		HTTPClient: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		UserAgent:  "ua/1",
		Retry:      p,
		Sleep: func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			*sleeps = append(*sleeps, d)
			mu.Unlock()
			return ctx.Err()
		},
	})
}

var pol = RetryPolicy{MaxRetries: 2, InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, MaxRetryAfter: 3 * time.Second}

func TestHeaders(t *testing.T) {
	srv, s := server(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	var sl []time.Duration
	tr := newT(&sl, pol)
	ctx := context.Background()
	reqs := []*Request{
		{Method: "GET", URL: srv.URL + "/g", APIKey: "k1"},
		{Method: "POST", URL: srv.URL + "/p", Body: []byte(`{"a":1}`), Header: http.Header{"X-Agent-Id": {"ag"}}},
		{Method: "POST", URL: srv.URL + "/empty"},
		{Method: "PUT", URL: srv.URL + "/put"},
		{Method: "DELETE", URL: srv.URL + "/d", APIKey: "k2"},
	}
	for _, r := range reqs {
		resp, err := tr.Do(ctx, r)
		require.NoError(t, err, "%s %s: %v %v", r.Method, r.URL, resp, err)
		require.EqualValues(t, 204, resp.Status, "%s %s: %v %v", r.Method, r.URL, resp, err)
		require.EqualValues(t, 1, resp.Attempts, "%s %s: %v %v", r.Method, r.URL, resp, err)
	}
	for i, r := range s.reqs {
		assert.Equal(t, "ua/1", r.Header.Get("User-Agent"), "%d: UA %q Accept %q", i, r.Header.Get("User-Agent"), r.Header.Get("Accept"))
		assert.Equal(t, "application/json", r.Header.Get("Accept"), "%d: UA %q Accept %q", i, r.Header.Get("User-Agent"), r.Header.Get("Accept"))
		ct := r.Header.Get("Content-Type")
		assert.Equal(t, r.Method == "POST" || r.Method == "PUT", ct == "application/json", "%s: Content-Type %q", r.Method, ct)
		assert.Empty(t, r.TransferEncoding, "%s: length %d, TE %v", r.Method, r.ContentLength, r.TransferEncoding)
		assert.Equal(t, int64(len(s.body[i])), r.ContentLength, "%s: length %d, TE %v", r.Method, r.ContentLength, r.TransferEncoding)
		if (r.Method == "POST" || r.Method == "PUT") && len(s.body[i]) == 0 {
			assert.Equal(t, "0", r.Header.Get("Content-Length"), "bodiless %s without Content-Length: 0", r.Method)
		}
	}
	assert.Equal(t, "k1", s.reqs[0].Header.Get("X-Api-Key"), "X-API-Key")
	assert.Equal(t, "", s.reqs[1].Header.Get("X-Api-Key"), "X-API-Key")
	assert.Equal(t, "k2", s.reqs[4].Header.Get("X-Api-Key"), "X-API-Key")
	assert.Equal(t, "ag", s.reqs[1].Header.Get("X-Agent-ID"), "per-request header or body")
	assert.Equal(t, `{"a":1}`, string(s.body[1]), "per-request header or body")
}

func TestBodyLimits(t *testing.T) {
	size := MaxSuccessBody + 1
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "r1")
		if r.URL.Path == "/err" {
			w.WriteHeader(500)
			io.WriteString(w, strings.Repeat("e", MaxErrorBody+10))
			return
		}
		if r.URL.Path == "/exact" {
			io.WriteString(w, strings.Repeat("x", MaxSuccessBody))
			return
		}
		io.WriteString(w, strings.Repeat("x", size))
	})
	var sl []time.Duration
	tr := newT(&sl, pol)
	resp, err := tr.Do(context.Background(), &Request{Method: "GET", URL: srv.URL + "/big", Idempotent: true})
	assert.ErrorIs(t, err, ErrBodyTooLarge, "big success: %v %+v", err, resp)
	if assert.NotNil(t, resp, "big success: %v %+v", err, resp) {
		assert.Equal(t, 200, resp.Status, "big success: %v %+v", err, resp)
		assert.Equal(t, "r1", resp.Header.Get("X-Request-Id"), "big success: %v %+v", err, resp)
		assert.Nil(t, resp.Body, "big success: %v %+v", err, resp)
	}
	assert.Len(t, sl, 0, "too-large body retried")
	resp, err = tr.Do(context.Background(), &Request{Method: "GET", URL: srv.URL + "/exact"})
	assert.NoError(t, err, "exactly the limit: %v", err)
	assert.Len(t, resp.Body, MaxSuccessBody, "exactly the limit: %v", err)
	resp, err = tr.Do(context.Background(), &Request{Method: "GET", URL: srv.URL + "/err"})
	assert.NoError(t, err, "error body: %v truncated %v len %d", err, resp.Truncated, len(resp.Body))
	assert.True(t, resp.Truncated, "error body: %v truncated %v len %d", err, resp.Truncated, len(resp.Body))
	assert.Len(t, resp.Body, MaxErrorBody, "error body: %v truncated %v len %d", err, resp.Truncated, len(resp.Body))
	assert.EqualValues(t, 500, resp.Status, "error body: %v truncated %v len %d", err, resp.Truncated, len(resp.Body))
}

func TestRetryDecisions(t *testing.T) {
	cases := []struct {
		name       string
		status     int
		idempotent bool
		want       int
	}{
		{"503 idempotent", 503, true, 3},
		{"429 idempotent", 429, true, 3},
		{"502 idempotent", 502, true, 3},
		{"504 idempotent", 504, true, 3},
		{"500 idempotent", 500, true, 1},
		{"408 idempotent", 408, true, 1},
		{"503 not idempotent", 503, false, 1},
		{"429 not idempotent", 429, false, 1},
		{"200", 200, true, 1},
	}
	for _, tc := range cases {
		srv, s := server(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(tc.status) })
		var sl []time.Duration
		tr := newT(&sl, pol)
		resp, err := tr.Do(context.Background(), &Request{Method: "POST", URL: srv.URL, Body: []byte(`{}`), Idempotent: tc.idempotent})
		assert.NoError(t, err, "%s: %v, %d requests, attempts %v, sleeps %v", tc.name, err, s.n(), resp, sl)
		assert.Equal(t, tc.status, resp.Status, "%s: %v, %d requests, attempts %v, sleeps %v", tc.name, err, s.n(), resp, sl)
		assert.Equal(t, tc.want, s.n(), "%s: %v, %d requests, attempts %v, sleeps %v", tc.name, err, s.n(), resp, sl)
		assert.Equal(t, tc.want, resp.Attempts, "%s: %v, %d requests, attempts %v, sleeps %v", tc.name, err, s.n(), resp, sl)
		assert.Len(t, sl, tc.want-1, "%s: %v, %d requests, attempts %v, sleeps %v", tc.name, err, s.n(), resp, sl)
	}
}

func TestNotWrittenIsResent(t *testing.T) {
	srv, s := server(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(201) })
	var calls atomic.Int32
	base := http.DefaultTransport.(*http.Transport).Clone()
	defer base.CloseIdleConnections()
	var sl []time.Duration
	tr := newT(&sl, pol)
	tr.cfg.HTTPClient = &http.Client{Transport: rtFunc(func(r *http.Request) (*http.Response, error) {
		if calls.Add(1) == 1 {
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
		}
		return base.RoundTrip(r)
	})}
	resp, err := tr.Do(context.Background(), &Request{Method: "POST", URL: srv.URL, Body: []byte(`{"x":1}`)})
	assert.NoError(t, err, "%v %v calls %d server %d", resp, err, calls.Load(), s.n())
	assert.EqualValues(t, 201, resp.Status, "%v %v calls %d server %d", resp, err, calls.Load(), s.n())
	assert.EqualValues(t, 2, calls.Load(), "%v %v calls %d server %d", resp, err, calls.Load(), s.n())
	assert.EqualValues(t, 1, s.n(), "%v %v calls %d server %d", resp, err, calls.Load(), s.n())
	assert.EqualValues(t, 2, resp.Attempts, "%v %v calls %d server %d", resp, err, calls.Load(), s.n())
	// Written, then dropped: not resent.
	srv2, s2 := server(t, func(w http.ResponseWriter, r *http.Request) {
		c, _, _ := w.(http.Hijacker).Hijack()
		c.Close()
	})
	tr2 := newT(&sl, pol)
	_, err = tr2.Do(context.Background(), &Request{Method: "POST", URL: srv2.URL, Body: []byte(`{"x":1}`)})
	assert.Error(t, err, "dropped non-idempotent")
	assert.EqualValues(t, 1, s2.n(), "dropped non-idempotent: %v, %d requests", err, s2.n())
	_, err = tr2.Do(context.Background(), &Request{Method: "POST", URL: srv2.URL, Body: []byte(`{"x":1}`), Idempotent: true})
	assert.Error(t, err, "dropped idempotent")
	assert.EqualValues(t, 4, s2.n(), "dropped idempotent: %v, %d requests", err, s2.n())
}

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestSleepContext(t *testing.T) {
	assert.NoError(t, SleepContext(context.Background(), 0))
	assert.NoError(t, SleepContext(context.Background(), time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	// The stimulus: a cancellation that arrives while SleepContext waits.
	stop := time.AfterFunc(10*time.Millisecond, cancel)
	defer stop.Stop()
	start := time.Now()
	err := SleepContext(ctx, time.Minute)
	el := time.Since(start)
	assert.ErrorIs(t, err, context.Canceled, "%v after %v", err, el)
	assert.LessOrEqual(t, el, 5*time.Second, "%v after %v", err, el)
	assert.ErrorIs(t, SleepContext(ctx, 0), context.Canceled, "done ctx, zero sleep")
}

func TestAbandonedRetryWrapsCtx(t *testing.T) {
	srv, s := server(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
	ctx, cancel := context.WithCancel(context.Background())
	tr := New(Config{HTTPClient: &http.Client{}, Retry: pol, Sleep: func(c context.Context, d time.Duration) error {
		cancel()
		return c.Err()
	}})
	resp, err := tr.Do(ctx, &Request{Method: "GET", URL: srv.URL, Idempotent: true})
	assert.Nil(t, resp, "%v %v %d", resp, err, s.n())
	assert.ErrorIs(t, err, context.Canceled, "%v %v %d", resp, err, s.n())
	assert.EqualValues(t, 1, s.n(), "%v %v %d", resp, err, s.n())
	assert.Contains(t, err.Error(), "503", "%v %v %d", resp, err, s.n())
}

func TestBackoffBounds(t *testing.T) {
	tr := New(Config{Retry: RetryPolicy{InitialBackoff: 100 * time.Millisecond, MaxBackoff: 250 * time.Millisecond}})
	for i := 0; i < 200; i++ {
		for attempt, max := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 250 * time.Millisecond, 10: 250 * time.Millisecond} {
			d := tr.cfg.Retry.backoff(attempt)
			require.GreaterOrEqual(t, d, max/2, "backoff(%d) = %v, want in [%v, %v]", attempt, d, max/2, max)
			require.LessOrEqual(t, d, max, "backoff(%d) = %v, want in [%v, %v]", attempt, d, max/2, max)
		}
	}
	d := New(Config{}).cfg.Retry.backoff(1)
	assert.EqualValues(t, 0, d, "zero policy backoff %v", d)
}

// A RoundTripper that fails without saying how far the request got (no
// dial error, no httptrace events) may have sent it: a non-idempotent
// request is not re-sent.
func TestUnknownFailureIsNotResent(t *testing.T) {
	var calls atomic.Int32
	var sl []time.Duration
	tr := newT(&sl, pol)
	tr.cfg.HTTPClient = &http.Client{Transport: rtFunc(func(r *http.Request) (*http.Response, error) {
		calls.Add(1)
		return nil, errors.New("proxy hung up")
	})}
	_, err := tr.Do(context.Background(), &Request{Method: "POST", URL: "http://127.0.0.1:1/x", Body: []byte(`{}`)})
	assert.Error(t, err, "want one call and no retry")
	assert.EqualValues(t, 1, calls.Load(), "err %v, %d calls, sleeps %v; want one call and no retry", err, calls.Load(), sl)
	assert.Empty(t, sl, "err %v, %d calls, sleeps %v; want one call and no retry", err, calls.Load(), sl)
	calls.Store(0)
	_, err = tr.Do(context.Background(), &Request{Method: "POST", URL: "http://127.0.0.1:1/x", Body: []byte(`{}`), Idempotent: true})
	assert.Error(t, err, "idempotent")
	assert.EqualValues(t, 3, calls.Load(), "idempotent: err %v, %d calls; want 3", err, calls.Load())
}

// TestUntilDeadline: a request marked UntilDeadline keeps retrying past
// MaxRetries, with the real backoff, until its deadline, and then returns
// the last answer it got (not a timeout). Unmarked requests, requests
// without a deadline, a zero InitialBackoff and MaxRetries 0 keep the budget.
func TestUntilDeadline(t *testing.T) {
	srv, s := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "r1")
		w.WriteHeader(503)
	})
	p := RetryPolicy{MaxRetries: 2, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, MaxRetryAfter: time.Second}
	tr := New(Config{HTTPClient: &http.Client{}, Retry: p})
	defer tr.cfg.HTTPClient.CloseIdleConnections()
	run := func(ctx context.Context, until bool) (*Response, int, time.Duration, error) {
		before := s.n()
		start := time.Now()
		resp, err := tr.Do(ctx, &Request{Method: "POST", URL: srv.URL, Body: []byte(`{}`), Idempotent: true, UntilDeadline: until})
		return resp, s.n() - before, time.Since(start), err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	resp, n, el, err := run(ctx, true)
	// 10-20 ms apart for 400 ms: well over the budget of 3 attempts.
	require.NoError(t, err, "until deadline: %v %+v after %d requests", err, resp, n)
	require.NotNil(t, resp, "until deadline: %v %+v after %d requests", err, resp, n)
	require.EqualValues(t, 503, resp.Status, "until deadline: %v %+v after %d requests", err, resp, n)
	require.GreaterOrEqual(t, n, 8, "until deadline: %v %+v after %d requests", err, resp, n)
	require.Equal(t, n, resp.Attempts, "until deadline: %v %+v after %d requests", err, resp, n)
	assert.LessOrEqual(t, el, 400*time.Millisecond, "returned after %v, past the 400ms deadline", el)

	ctx2, cancel2 := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel2()
	_, n, _, _ = run(ctx2, false)
	assert.EqualValues(t, 3, n, "without UntilDeadline: %d requests, want 3", n)
	_, n, _, _ = run(context.Background(), true)
	assert.EqualValues(t, 3, n, "no deadline: %d requests, want 3", n)
	for name, q := range map[string]RetryPolicy{
		"zero backoff": {MaxRetries: 2, MaxRetryAfter: time.Second},
		"no retries":   {MaxRetries: 0, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond},
	} {
		tr2 := New(Config{HTTPClient: &http.Client{}, Retry: q})
		ctx3, cancel3 := context.WithTimeout(context.Background(), 300*time.Millisecond)
		before := s.n()
		tr2.Do(ctx3, &Request{Method: "GET", URL: srv.URL, Idempotent: true, UntilDeadline: true})
		cancel3()
		tr2.cfg.HTTPClient.CloseIdleConnections()
		n, want := s.n()-before, q.MaxRetries+1
		assert.Equal(t, want, n, "%s: %d requests, want %d", name, n, want)
	}
}

// TestUntilDeadlineRidesOutRefusedPort: with nothing listening, the request
// is retried until its deadline (with 10-20 ms backoffs, 6 attempts or more
// in 300 ms; the budget alone allows 3).
func TestUntilDeadlineRidesOutRefusedPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	var calls atomic.Int32
	tr := New(Config{HTTPClient: &http.Client{Transport: rtFunc(func(r *http.Request) (*http.Response, error) {
		calls.Add(1)
		return http.DefaultTransport.RoundTrip(r)
	})}, Retry: RetryPolicy{MaxRetries: 2, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = tr.Do(ctx, &Request{Method: "GET", URL: "http://" + addr + "/", Idempotent: true, UntilDeadline: true})
	// The last attempt may itself be cut by the deadline on a loaded machine.
	require.True(t, isDialError(err) || errors.Is(err, context.DeadlineExceeded), "err %v after %d attempts; want a dial error after many", err, calls.Load())
	require.GreaterOrEqual(t, calls.Load(), int32(6), "err %v after %d attempts; want a dial error after many", err, calls.Load())
}

// TestDeadlineCutsRetryKeepsAnswer: a retry that the deadline cuts short
// gives back the HTTP answer it was retrying, not the timeout.
func TestDeadlineCutsRetryKeepsAnswer(t *testing.T) {
	var n atomic.Int32
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set("X-Request-Id", "first")
			w.WriteHeader(503)
			return
		}
		<-r.Context().Done() // the retry hangs
	})
	tr := New(Config{HTTPClient: &http.Client{}, Retry: RetryPolicy{MaxRetries: 2, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 10 * time.Millisecond}})
	defer tr.cfg.HTTPClient.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	resp, err := tr.Do(ctx, &Request{Method: "GET", URL: srv.URL, Idempotent: true})
	require.NoError(t, err, "%+v %v; want the first 503 after 2 attempts", resp, err)
	require.NotNil(t, resp, "%+v %v; want the first 503 after 2 attempts", resp, err)
	require.EqualValues(t, 503, resp.Status, "%+v %v; want the first 503 after 2 attempts", resp, err)
	require.Equal(t, "first", resp.Header.Get("X-Request-Id"), "%+v %v; want the first 503 after 2 attempts", resp, err)
	require.EqualValues(t, 2, resp.Attempts, "%+v %v; want the first 503 after 2 attempts", resp, err)
	// The caller's cancellation still wins.
	n.Store(0)
	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel2)
	resp, err = tr.Do(ctx2, &Request{Method: "GET", URL: srv.URL, Idempotent: true})
	require.ErrorIs(t, err, context.Canceled, "%+v %v; want context.Canceled", resp, err)
	require.Nil(t, resp, "%+v %v; want context.Canceled", resp, err)
}

// TestDeadlineDuringWaitKeepsAnswer: when the deadline ends the wait before
// a retry (the machine was slow, say), the answer being retried comes back,
// not a NETWORK_ERROR that hides the 503; the caller's cancellation still
// wins.
func TestDeadlineDuringWaitKeepsAnswer(t *testing.T) {
	var n atomic.Int32
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("X-Request-Id", "only")
		w.WriteHeader(503)
	})
	for _, tc := range []struct {
		name  string
		sleep error
	}{{"deadline", context.DeadlineExceeded}, {"canceled", context.Canceled}} {
		n.Store(0)
		tr := New(Config{HTTPClient: &http.Client{}, Retry: RetryPolicy{MaxRetries: 2, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond},
			Sleep: func(context.Context, time.Duration) error { return tc.sleep }})
		resp, err := tr.Do(context.Background(), &Request{Method: "GET", URL: srv.URL, Idempotent: true})
		tr.cfg.HTTPClient.CloseIdleConnections()
		if tc.sleep == context.DeadlineExceeded {
			require.NoError(t, err, "%s: %+v %v (%d requests); want the 503 after 1 attempt", tc.name, resp, err, n.Load())
			require.NotNil(t, resp, "%s: %+v %v (%d requests); want the 503 after 1 attempt", tc.name, resp, err, n.Load())
			require.EqualValues(t, 503, resp.Status, "%s: %+v %v (%d requests); want the 503 after 1 attempt", tc.name, resp, err, n.Load())
			require.Equal(t, "only", resp.Header.Get("X-Request-Id"), "%s: %+v %v (%d requests); want the 503 after 1 attempt", tc.name, resp, err, n.Load())
			require.EqualValues(t, 1, resp.Attempts, "%s: %+v %v (%d requests); want the 503 after 1 attempt", tc.name, resp, err, n.Load())
			require.EqualValues(t, 1, n.Load(), "%s: %+v %v (%d requests); want the 503 after 1 attempt", tc.name, resp, err, n.Load())
			continue
		}
		require.ErrorIs(t, err, context.Canceled, "%s: %+v %v; want context.Canceled", tc.name, resp, err)
		require.Nil(t, resp, "%s: %+v %v; want context.Canceled", tc.name, resp, err)
	}
}

// chunky returns data in reads of at most 3 bytes, then err (io.EOF when
// nil), as a RoundTripper's body might.
type chunky struct {
	data []byte
	err  error
}

func (c *chunky) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 3)], c.data)
	c.data = c.data[n:]
	return n, nil
}

func TestReadBody(t *testing.T) {
	boom := errors.New("boom")
	cases := []struct {
		name     string
		data     string
		err      error
		declared int64
		want     string
		wantErr  error
	}{
		{"declared", "hello world", nil, 11, "hello world", nil},
		{"empty", "", nil, 0, "", nil},
		{"unknown length", "hello world", nil, -1, "hello world", nil},
		{"longer than declared", "hello world", nil, 5, "hello world", nil},
		{"longer than declared, past the limit", "hello world, and more", nil, 5, "hello world, and m", nil},
		{"unknown length past the limit", "hello world, and more", nil, -1, "hello world, and m", nil},
		{"declared past the limit", "hello world, and more", nil, 100, "hello world, and m", nil},
		{"shorter than declared", "hello", nil, 11, "", io.ErrUnexpectedEOF},
		{"failure mid-body", "hello", boom, 11, "", boom},
		{"failure after the declared bytes", "hello", boom, 5, "", boom},
	}
	const limit = 17 // at most 18 bytes are read
	for _, tc := range cases {
		b, err := readBody(&chunky{data: []byte(tc.data), err: tc.err}, tc.declared, limit)
		if tc.wantErr != nil {
			assert.ErrorIs(t, err, tc.wantErr, "%s: err %v, want %v", tc.name, err, tc.wantErr)
			continue
		}
		assert.NoError(t, err, "%s: %q, %v; want %q", tc.name, b, err, tc.want)
		assert.Equal(t, tc.want, string(b), "%s: %q, %v; want %q", tc.name, b, err, tc.want)
	}
}

// TestAPIKeyHeaderSwaps: the X-API-Key value is built once per key and
// swapped when the key changes, so every request carries exactly its key.
func TestAPIKeyHeaderSwaps(t *testing.T) {
	srv, s := server(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	var sl []time.Duration
	tr := newT(&sl, pol)
	keys := []string{"k1", "k1", "k2", "k1", ""}
	for _, k := range keys {
		_, err := tr.Do(context.Background(), &Request{Method: "GET", URL: srv.URL, APIKey: k})
		require.NoError(t, err)
	}
	for i, r := range s.reqs {
		got := r.Header.Values("X-Api-Key")
		if keys[i] == "" {
			assert.Empty(t, got, "request %d: X-API-Key %q, want none", i, got)
		} else {
			assert.Equal(t, []string{keys[i]}, got, "request %d: X-API-Key %q, want %q", i, got, keys[i])
		}
	}
	v := tr.apiKeyValue("k3")
	assert.Same(t, &v[0], &tr.apiKeyValue("k3")[0], "the header value of an unchanged key was rebuilt")
	// Concurrent requests under alternating keys: each carries its own.
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(k string) {
			defer wg.Done()
			tr.Do(context.Background(), &Request{Method: "GET", URL: srv.URL + "/" + k, APIKey: k})
		}([]string{"ka", "kb"}[i%2])
	}
	wg.Wait()
	for _, r := range s.reqs[len(keys):] {
		got := r.Header.Get("X-Api-Key")
		assert.Equal(t, r.URL.Path, "/"+got, "%s carried key %q", r.URL.Path, got)
	}
}

// TestSendMatchesClientDo: going straight to the RoundTripper gives the same
// errors as http.Client.Do (a refused port, HTTPS to an HTTP server), never
// follows a redirect, and a client with a timeout or a cookie jar still goes
// through Client.Do.
func TestSendMatchesClientDo(t *testing.T) {
	plain, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refused := "http://" + ln.Addr().String() + "/x"
	ln.Close()
	hc := &http.Client{}
	defer hc.CloseIdleConnections()
	tr := New(Config{HTTPClient: hc})
	for _, u := range []string{refused, strings.Replace(plain.URL, "http:", "https:", 1) + "/y"} {
		for _, m := range []string{"GET", "POST", "PATCH"} {
			r1, _ := http.NewRequest(m, u, nil)
			r2, _ := http.NewRequest(m, u, nil)
			_, want := hc.Do(r1)
			_, got := tr.send(r2)
			var ue *url.Error
			if assert.Error(t, want, "%s %s: net/http accepted it", m, u) && assert.Error(t, got, "%s %s: send accepted it", m, u) {
				assert.Equal(t, want.Error(), got.Error(), "%s %s", m, u)
				assert.ErrorAs(t, got, &ue, "%s %s: %v", m, u, got)
			}
		}
	}
	r, _ := http.NewRequest("GET", plain.URL+"/a", nil)
	resp, err := tr.send(r)
	require.NoError(t, err, "redirect: %v %v", resp, err)
	require.Equal(t, http.StatusFound, resp.StatusCode, "redirect: %v %v", resp, err)
	resp.Body.Close()
	// A client timeout is honoured: it is the Client's job.
	slow, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	tc := &http.Client{Timeout: 50 * time.Millisecond}
	defer tc.CloseIdleConnections()
	r, _ = http.NewRequest("GET", slow.URL, nil)
	_, err = New(Config{HTTPClient: tc}).send(r)
	assert.ErrorContains(t, err, "Client.Timeout", "client timeout")
}

// A request's own retry policy replaces the Transport's, budget and backoff
// alike; without one the Transport's applies.
func TestRequestRetryPolicy(t *testing.T) {
	srv, s := server(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
	var sl []time.Duration
	tr := newT(&sl, pol)
	own := &RetryPolicy{MaxRetries: 4, InitialBackoff: time.Hour, MaxBackoff: time.Hour}
	resp, err := tr.Do(context.Background(), &Request{Method: "GET", URL: srv.URL, Idempotent: true, Retry: own})
	require.NoError(t, err, "own policy: %v %+v, %d requests, sleeps %v", err, resp, s.n(), sl)
	require.EqualValues(t, 5, resp.Attempts, "own policy: %v %+v, %d requests, sleeps %v", err, resp, s.n(), sl)
	require.EqualValues(t, 5, s.n(), "own policy: %v %+v, %d requests, sleeps %v", err, resp, s.n(), sl)
	require.Len(t, sl, 4, "own policy: %v %+v, %d requests, sleeps %v", err, resp, s.n(), sl)
	for _, d := range sl {
		assert.GreaterOrEqual(t, d, 30*time.Minute, "backoff %v is not the request policy's", d)
		assert.LessOrEqual(t, d, time.Hour, "backoff %v is not the request policy's", d)
	}
	sl = nil
	resp, err = tr.Do(context.Background(), &Request{Method: "GET", URL: srv.URL, Idempotent: true, Retry: &RetryPolicy{}})
	assert.NoError(t, err, "zero request policy: %v %+v, sleeps %v", err, resp, sl)
	assert.EqualValues(t, 1, resp.Attempts, "zero request policy: %v %+v, sleeps %v", err, resp, sl)
	assert.Len(t, sl, 0, "zero request policy: %v %+v, sleeps %v", err, resp, sl)
	resp, err = tr.Do(context.Background(), &Request{Method: "GET", URL: srv.URL, Idempotent: true})
	assert.NoError(t, err, "transport policy: %v %+v", err, resp)
	assert.Equal(t, pol.MaxRetries+1, resp.Attempts, "transport policy: %v %+v", err, resp)
}
