package agenttrust

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

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
			if !errors.As(err, &ae) || ae.Status != status {
				t.Errorf("%s %d: err %v", name, status, err)
			}
			if n := srv.count(); n != want {
				t.Errorf("%s %d: %d requests, want %d", name, status, n, want)
			}
			if want > 1 {
				reqs := srv.requests()
				for _, r := range reqs[1:] {
					if string(r.Body) != string(reqs[0].Body) || r.EscapedPath != reqs[0].EscapedPath {
						t.Errorf("%s: retry differs from the first attempt", name)
					}
				}
			}
		}
		// A transport failure (connection dropped mid-response).
		srv.clear()
		srv.setHandler(hijackClose)
		wantNetwork(t, call(ctxT(t)))
		if n := srv.count(); n != 3 {
			t.Errorf("%s after a dropped connection: %d requests, want 3", name, n)
		}
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
	if err != nil || !res.Allowed || srv.count() != 3 {
		t.Fatalf("res %+v err %v requests %d", res, err, srv.count())
	}
}

func TestMaxRetriesZeroDisables(t *testing.T) {
	srv := newRecServer(t, reply(503, ""))
	c := newTestClient(t, srv.URL, WithRetryPolicy(RetryPolicy{MaxRetries: 0, InitialBackoff: time.Millisecond}))
	for name, call := range idempotentCalls(c) {
		srv.clear()
		if err := call(ctxT(t)); err == nil || srv.count() != 1 {
			t.Errorf("%s: %d requests", name, srv.count())
		}
	}
	srv.setHandler(hijackClose)
	srv.clear()
	_, err := c.Actions.Check(ctxT(t), ActionCheckParams{AgentID: "a1"})
	wantNetwork(t, err)
	if srv.count() != 1 {
		t.Errorf("%d requests", srv.count())
	}
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
			if len(d) != 2 {
				t.Fatalf("%d sleeps, want 2", len(d))
			}
			for _, got := range d {
				// An HTTP date has one-second resolution, and the date was
				// made before this case ran.
				low := tc.want - time.Second - time.Since(dateMade)
				if got > tc.want || got < low || (tc.header != cases[3].header && got != tc.want) {
					t.Errorf("Retry-After %q on %d: slept %v, want %v", tc.header, status, got, tc.want)
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
	if d := sl.got(); len(d) != 1 || d[0] != 2*time.Second {
		t.Errorf("custom cap: %v", d)
	}
}

func TestBackoffGrowsWithJitter(t *testing.T) {
	srv := newRecServer(t, reply(502, ""))
	sl := &sleepRecorder{}
	p := RetryPolicy{MaxRetries: 5, InitialBackoff: 100 * time.Millisecond, MaxBackoff: 300 * time.Millisecond, MaxRetryAfter: time.Second}
	c := newTestClient(t, srv.URL, withSleep(sl.sleep), WithRetryPolicy(p))
	c.Health(ctxT(t))
	d := sl.got()
	caps := []time.Duration{100, 200, 300, 300, 300}
	if len(d) != len(caps) || srv.count() != 6 {
		t.Fatalf("sleeps %v, requests %d", d, srv.count())
	}
	for i, got := range d {
		max := caps[i] * time.Millisecond
		if got < max/2 || got > max {
			t.Errorf("sleep %d = %v, want in [%v, %v]", i, got, max/2, max)
		}
	}
}

func TestCancelDuringBackoffReturnsPromptly(t *testing.T) {
	first := make(chan struct{}, 1)
	srv := newRecServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(503)
		select {
		case first <- struct{}{}:
		default:
		}
	})
	// The real sleep: a 10 s backoff that the cancellation must cut short.
	c, err := New(WithBaseURL(srv.URL), WithRetryPolicy(RetryPolicy{MaxRetries: 2, InitialBackoff: 10 * time.Second,
		MaxBackoff: 10 * time.Second, MaxRetryAfter: 10 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-first
		time.Sleep(20 * time.Millisecond)
		cancel()
	}()
	start := time.Now()
	_, err = c.Actions.Check(ctx, ActionCheckParams{AgentID: "a1"})
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("returned after %v", el)
	}
	wantNetwork(t, err)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err %v does not wrap context.Canceled", err)
	}
	if srv.count() != 1 {
		t.Errorf("%d requests", srv.count())
	}
}

func TestNonIdempotentNotResent(t *testing.T) {
	srv := newRecServer(t, nil)
	c := newTestClient(t, srv.URL)
	for name, call := range nonIdempotentCalls(c) {
		for _, h := range []http.HandlerFunc{reply(503, ""), reply(502, ""), reply(429, ""), hijackClose} {
			c.Tokens.ClearCache()
			srv.clear()
			srv.setHandler(h)
			if err := call(ctxT(t)); err == nil {
				t.Errorf("%s: no error", name)
			}
			if n := srv.count(); n != 1 {
				t.Errorf("%s: sent %d times", name, n)
			}
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
		if err := nonIdempotentCalls(c2)[name](ctxT(t)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if rt.calls.Load() != 2 || srv.count() != 1 {
			t.Errorf("%s: %d attempts, %d reached the server; want 2 and 1", name, rt.calls.Load(), srv.count())
		}
		rt.next.CloseIdleConnections()
	}
	// A refused port is retried for a create and ends as a network error.
	closed := closedURL(t)
	sl := &sleepRecorder{}
	c3 := newTestClient(t, closed, withSleep(sl.sleep))
	_, err := c3.Agents.Create(ctxT(t), AgentCreateParams{Name: "x"})
	wantNetwork(t, err)
	if len(sl.got()) != 2 {
		t.Errorf("refused create retried %d times, want 2", len(sl.got()))
	}
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
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err = c.Actions.Check(ctx, ActionCheckParams{AgentID: "a1"})
			if el := time.Since(start); el > time.Second {
				t.Errorf("%d: returned after %v", status, el)
			}
			var ae *AgentTrustError
			if !errors.As(err, &ae) || ae.Status != status || ae.RequestID != "req-9" || errors.Is(err, ErrNetwork) {
				t.Fatalf("%d: err %v, want the HTTP error", status, err)
			}
			if srv.count() != 1 {
				t.Errorf("%d: %d requests", status, srv.count())
			}
			if status == 429 {
				var rl *RateLimitError
				if !errors.As(err, &rl) || rl.RetryAfter != 30*time.Second {
					t.Errorf("429: err %#v, want a *RateLimitError with RetryAfter 30s", err)
				}
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
	if d := sl.got(); len(d) != 2 || d[0] != time.Second {
		t.Errorf("fitting Retry-After: sleeps %v", d)
	}
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
	if !errors.As(err, &ae) || ae.Status != 503 || ae.RequestID != "req-3" || srv.count() != 1 || len(sl.got()) != 0 {
		t.Fatalf("err %v, %d requests, sleeps %v; want the 503 at once", err, srv.count(), sl.got())
	}

	srv.clear()
	sl = &sleepRecorder{}
	c = newTestClient(t, srv.URL, withSleep(sl.sleep),
		WithRetryPolicy(RetryPolicy{MaxRetries: 1, InitialBackoff: 4 * time.Second, MaxBackoff: 4 * time.Second, MaxRetryAfter: time.Second}))
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.Agents.Get(ctx, "a1")
	// The backoff, in [2s, 4s], is cut to at most half of the 5 s left.
	if d := sl.got(); len(d) != 1 || d[0] > 2500*time.Millisecond || d[0] < 2*time.Second-100*time.Millisecond {
		t.Errorf("sleeps %v, want one in [2s, 2.5s]", d)
	}
}
