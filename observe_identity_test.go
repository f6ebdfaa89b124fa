package agenttrust

import (
	"context"
	"net/http"
	"strconv"
	"testing"

	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
)

// With agent credentials and an Observer, every attempt of a check carries
// both the credentials (a fresh DPoP proof each time, verified by the fake)
// and the observer's traceparent; the observer cannot replace the token,
// the proof or the API key.
func TestObserverWithAgentCredentials(t *testing.T) {
	var starts []int
	obs := &Observer{AttemptStart: func(_ context.Context, _ RequestInfo, n int, h http.Header) {
		starts = append(starts, n)
		h.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333"+strconv.Itoa(n)+"-01")
		h.Set("Authorization", "Bearer observer-token")
		h.Set("DPoP", "observer-proof")
		h.Set("X-API-Key", "observer-key")
	}}
	e := newIdentityEnv(t, WithObserver(obs))
	e.srv.InjectFault(checkRoute, agenttrusttest.Fault{Status: 503, Times: 1})
	res, err := e.check(ctxT(t))
	if err != nil || !res.Allowed {
		t.Fatalf("Check = %+v, %v", res, err)
	}
	if rej := e.srv.IdentityRejections(); len(rej) != 0 {
		t.Fatalf("the fake rejected the credentials: %+v", rej)
	}
	checks := e.checkRequests()
	if len(checks) != 2 || len(starts) < 2 || starts[len(starts)-1] != 2 {
		t.Fatalf("%d check requests, attempts observed %v", len(checks), starts)
	}
	for i, r := range checks {
		a := strconv.Itoa(i + 1)
		if got := r.Header.Get("Traceparent"); got != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333"+a+"-01" {
			t.Errorf("attempt %s: traceparent %q", a, got)
		}
		if got := r.Header.Values("Authorization"); len(got) != 1 || got[0] == "Bearer observer-token" {
			t.Errorf("attempt %s: Authorization %q", a, got)
		}
		if got := r.Header.Values("DPoP"); len(got) != 1 || got[0] == "observer-proof" {
			t.Errorf("attempt %s: DPoP %q", a, got)
		}
		if got := r.Header.Get("X-API-Key"); got != e.srv.APIKey() {
			t.Errorf("attempt %s: X-API-Key replaced", a)
		}
	}
	if checks[0].Header.Get("DPoP") == checks[1].Header.Get("DPoP") {
		t.Error("the retry reused the proof")
	}
}
