package transport

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"
)

func TestBeforeAttemptRunsForEveryAttempt(t *testing.T) {
	srv, s := server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Attempt") != "3" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	var sleeps []time.Duration
	tr := newT(&sleeps, pol)
	n := 0
	resp, err := tr.Do(context.Background(), &Request{Method: "POST", URL: srv.URL, Idempotent: true,
		Header: http.Header{"X-Fixed": {"f"}},
		BeforeAttempt: func(_ context.Context, h http.Header) error {
			n++
			if len(h) != 0 {
				t.Errorf("attempt %d starts with headers %v", n, h)
			}
			h["X-Attempt"] = []string{strconv.Itoa(n)}
			return nil
		}})
	if err != nil || resp.Status != 200 || n != 3 || s.n() != 3 {
		t.Fatalf("status %v err %v, hook ran %d times, %d requests", resp, err, n, s.n())
	}
	for i, r := range s.reqs {
		if r.Header.Get("X-Attempt") != strconv.Itoa(i+1) || r.Header.Get("X-Fixed") != "f" {
			t.Errorf("request %d headers %v", i, r.Header)
		}
	}
}

func TestBeforeAttemptErrorStopsUnsent(t *testing.T) {
	srv, s := server(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	var sleeps []time.Duration
	tr := newT(&sleeps, pol)
	boom := errors.New("no credentials")
	n := 0
	_, err := tr.Do(context.Background(), &Request{Method: "POST", URL: srv.URL, Idempotent: true,
		BeforeAttempt: func(context.Context, http.Header) error {
			n++
			if n == 2 {
				return boom
			}
			return nil
		}})
	var he *HookError
	if !errors.As(err, &he) || !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if s.n() != 1 || n != 2 {
		t.Errorf("%d requests, hook ran %d times; want 1 and 2", s.n(), n)
	}
}
