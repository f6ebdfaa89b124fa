package transport

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
		BeforeAttempt: AttemptFunc(func(_ context.Context, h http.Header) error {
			n++
			assert.Len(t, h, 0, "attempt %d starts with headers %v", n, h)
			h["X-Attempt"] = []string{strconv.Itoa(n)}
			return nil
		})})
	require.NoError(t, err, "status %v err %v, hook ran %d times, %d requests", resp, err, n, s.n())
	require.EqualValues(t, 200, resp.Status, "status %v err %v, hook ran %d times, %d requests", resp, err, n, s.n())
	require.EqualValues(t, 3, n, "status %v err %v, hook ran %d times, %d requests", resp, err, n, s.n())
	require.EqualValues(t, 3, s.n(), "status %v err %v, hook ran %d times, %d requests", resp, err, n, s.n())
	for i, r := range s.reqs {
		assert.Equal(t, strconv.Itoa(i+1), r.Header.Get("X-Attempt"), "request %d headers %v", i, r.Header)
		assert.Equal(t, "f", r.Header.Get("X-Fixed"), "request %d headers %v", i, r.Header)
	}
}

func TestBeforeAttemptErrorStopsUnsent(t *testing.T) {
	srv, s := server(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	var sleeps []time.Duration
	tr := newT(&sleeps, pol)
	boom := errors.New("no credentials")
	n := 0
	_, err := tr.Do(context.Background(), &Request{Method: "POST", URL: srv.URL, Idempotent: true,
		BeforeAttempt: AttemptFunc(func(context.Context, http.Header) error {
			n++
			if n == 2 {
				return boom
			}
			return nil
		})})
	var he *HookError
	require.ErrorAs(t, err, &he, "err = %v", err)
	require.ErrorIs(t, err, boom, "err = %v", err)
	assert.EqualValues(t, 1, s.n(), "%d requests, hook ran %d times; want 1 and 2", s.n(), n)
	assert.EqualValues(t, 2, n, "%d requests, hook ran %d times; want 1 and 2", s.n(), n)
}

// attemptObs is an AttemptObserver that tries to set headers on every
// attempt, some of which it may not replace.
type attemptObs struct {
	starts, dones []int
	statuses      []int
}

func (o *attemptObs) AttemptStart(ctx context.Context, n int, h http.Header) context.Context {
	o.starts = append(o.starts, n)
	h.Set("Traceparent", "00-trace-"+strconv.Itoa(n))
	h.Set("Authorization", "Bearer observer")
	h.Set("Dpop", "observer-proof")
	h.Set("X-Api-Key", "observer-key")
	h["x-hook"] = []string{"observer"} // not canonical: still BeforeAttempt's header
	h.Set("X-Agent-Id", "observer-agent")
	h.Set("X-Tenant", "observer-tenant")
	return ctx
}

func (o *attemptObs) AttemptDone(_ context.Context, n, status int, _ error) {
	o.dones = append(o.dones, n)
	o.statuses = append(o.statuses, status)
}

// Both per-attempt hooks apply on every attempt, and the observer's headers
// never replace the credentials BeforeAttempt adds, the API key or the
// call's own headers (Header and HeaderNames alike).
func TestObserverAndBeforeAttemptOnEveryAttempt(t *testing.T) {
	srv, s := server(t, func(w http.ResponseWriter, r *http.Request) {
		if s := r.Header.Get("X-Hook"); s != "2" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	var sleeps []time.Duration
	tr := newT(&sleeps, pol)
	obs := &attemptObs{}
	n := 0
	resp, err := tr.Do(context.Background(), &Request{Method: "POST", URL: srv.URL, Idempotent: true, APIKey: "the-key",
		Header:      http.Header{"X-Agent-Id": {"agent-1"}},
		HeaderNames: []string{"X-Tenant"}, HeaderValues: []string{"tenant-1"},
		Observer: obs,
		BeforeAttempt: AttemptFunc(func(_ context.Context, h http.Header) error {
			n++
			h["Authorization"] = []string{"DPoP token-" + strconv.Itoa(n)}
			h["Dpop"] = []string{"proof-" + strconv.Itoa(n)}
			h["X-Hook"] = []string{strconv.Itoa(n)}
			return nil
		})})
	require.NoError(t, err, "status %v err %v, %d requests", resp, err, s.n())
	require.EqualValues(t, 200, resp.Status, "status %v err %v, %d requests", resp, err, s.n())
	require.EqualValues(t, 2, s.n(), "status %v err %v, %d requests", resp, err, s.n())
	if assert.Len(t, obs.starts, 2, "observer saw starts %v", obs.starts) {
		assert.Equal(t, 2, obs.starts[1], "observer saw starts %v", obs.starts)
	}
	assert.Len(t, obs.dones, 2, "observer saw dones %v", obs.dones)
	assert.Equal(t, []int{503, 200}, obs.statuses, "observer saw statuses %v", obs.statuses)
	for i, r := range s.reqs {
		a := strconv.Itoa(i + 1)
		want := map[string]string{
			"Traceparent": "00-trace-" + a, "Authorization": "DPoP token-" + a, "Dpop": "proof-" + a,
			"X-Hook": a, "X-Api-Key": "the-key", "X-Agent-Id": "agent-1", "X-Tenant": "tenant-1",
		}
		for k, v := range want {
			got := r.Header.Values(k)
			assert.Equal(t, []string{v}, got, "attempt %s: %s = %q, want [%q]", a, k, got, v)
		}
	}
}
