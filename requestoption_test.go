package agenttrust

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var optType = reflect.TypeOf([]RequestOption(nil))

// TestEveryCallTakesRequestOptions calls, by reflection, every method of the
// Client and its services that takes a ctx, and checks that each takes
// opts ...RequestOption last and that every request it sends carries a
// WithRequestHeader. A method added without options, or one that drops
// them on the way to the request builder, fails here.
func TestEveryCallTakesRequestOptions(t *testing.T) {
	srv := newRecServer(t, reply(200, `{"nonce":"n1","token":"t1","allowed":true,"jsonrpc":"2.0","id":1,"result":{}}`))
	c := newTestClient(t, srv.URL)
	ks := NewInMemoryKeyStore()
	require.NoError(t, ks.Store(ctxT(t), "a1", vecPrivPEM))
	// Arguments a zero value would make fail before any I/O.
	args := map[reflect.Type]any{
		reflect.TypeOf(MCPCallToolParams{}):     MCPCallToolParams{AgentID: "a1", Method: "tools/list"},
		reflect.TypeOf(WIMSEProofParams{}):      WIMSEProofParams{AgentID: "a1", KeyStore: ks},
		reflect.TypeOf(StreamingUpdateParams{}): StreamingUpdateParams{Name: fillArg(reflect.TypeOf((*string)(nil))).Interface().(*string)},
	}
	methods := ctxMethods(c)
	require.GreaterOrEqual(t, len(methods), 50, "only %d methods found; the reflection walk is broken", len(methods))
	for name, m := range methods {
		ft := m.Type()
		if !assert.True(t, ft.IsVariadic() && ft.In(ft.NumIn()-1) == optType, "%s does not take opts ...RequestOption last", name) {
			continue
		}
		in := []reflect.Value{reflect.ValueOf(ctxT(t))}
		for a := 1; a < ft.NumIn()-1; a++ {
			at := ft.In(a)
			switch v, ok := args[at]; {
			case ok:
				in = append(in, reflect.ValueOf(v))
			case at.Kind() == reflect.String:
				in = append(in, reflect.ValueOf("a1").Convert(at))
			default:
				in = append(in, reflect.Zero(at))
			}
		}
		in = append(in, reflect.ValueOf(WithRequestHeader("X-Probe", "probe-1")))
		srv.clear()
		m.Call(in)
		reqs := srv.requests()
		assert.NotEmpty(t, reqs, "%s sent nothing", name)
		for _, r := range reqs {
			got := r.Header.Get("X-Probe")
			assert.Equal(t, "probe-1", got, "%s: %s %s without the option's header (%q)", name, r.Method, r.Path, got)
		}
	}
}

func TestWithRequestHeader(t *testing.T) {
	srv := newRecServer(t, reply(200, `{"allowed":true}`))
	c := newTestClient(t, srv.URL)
	ctx := ctxT(t)
	// Sent, canonicalised; a later option of the same name wins; the SDK's
	// own headers are untouched.
	_, err := c.Actions.Check(ctx, ActionCheckParams{AgentID: "a1"},
		WithRequestHeader("x-tenant", "t1"), WithRequestHeader("X-Tenant", "t2"), WithRequestHeader("X-Trace", "tr"))
	require.NoError(t, err)
	r := srv.only(t)
	got := r.Header.Values("X-Tenant")
	require.Len(t, got, 1, "headers %v", r.Header)
	assert.Equal(t, "t2", got[0], "headers %v", r.Header)
	assert.Equal(t, "tr", r.Header.Get("X-Trace"), "headers %v", r.Header)
	checkHeaders(t, r, testKey)

	// Refused before any I/O, without quoting the value.
	srv.clear()
	bad := map[string]RequestOption{
		"api key":          WithRequestHeader("X-API-Key", "sk_other"),
		"authorization":    WithRequestHeader("authorization", "Bearer secret-tok"),
		"dpop":             WithRequestHeader("DPoP", "proof"),
		"content type":     WithRequestHeader("Content-Type", "text/plain"),
		"accept":           WithRequestHeader("Accept", "text/plain"),
		"user agent":       WithRequestHeader("User-Agent", "me"),
		"host":             WithRequestHeader("Host", "evil.example"),
		"empty name":       WithRequestHeader("", "v"),
		"name with space":  WithRequestHeader("X Bad", "v"),
		"name with colon":  WithRequestHeader("X-Bad:", "v"),
		"CRLF in value":    WithRequestHeader("X-Tenant", "secret-v\r\nX-Evil: 1"),
		"NUL in value":     WithRequestHeader("X-Tenant", "secret-v\x00"),
		"DEL in value":     WithRequestHeader("X-Tenant", "secret-v\x7f"),
		"call's own agent": WithRequestHeader("X-Agent-ID", "other"),
	}
	for name, o := range bad {
		var err error
		if name == "call's own agent" {
			_, err = c.MCP.CallTool(ctx, "srv1", MCPCallToolParams{AgentID: "a1", Method: "tools/list"}, o)
		} else {
			_, err = c.Actions.Check(ctx, ActionCheckParams{AgentID: "a1"}, o)
		}
		var ve *ValidationError
		require.ErrorAs(t, err, &ve, "%s: %v, want a validation error", name, err)
		assert.Contains(t, err.Error(), "WithRequestHeader", "%s: %v, want a validation error", name, err)
		assert.NotContains(t, err.Error(), "secret", "%s: the error quotes the value", name)
		assert.NotContains(t, err.Error(), "sk_other", "%s: the error quotes the value", name)
	}
	n := srv.count()
	assert.Equal(t, 0, n, "%d requests sent with invalid header options", n)

	// A header value is a secret: an error echoing it has it redacted.
	srv.setHandler(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(400)
		fmt.Fprintf(w, `{"message":"bad tenant %s","detail":{"got":"%s"}}`, r.Header.Get("X-Tenant"), r.Header.Get("X-Tenant"))
	})
	_, err = c.Agents.Get(ctx, "a1", WithRequestHeader("X-Tenant", "tenant-secret-42"))
	var ae *AgentTrustError
	require.ErrorAs(t, err, &ae, "%v", err)
	require.Equal(t, 400, ae.Status, "%v", err)
	s := fmt.Sprintf("%v %+v", err, ae.Details)
	assert.NotContains(t, s, "tenant-secret-42", "header value not redacted: %s", s)
	assert.Contains(t, s, "[redacted]", "header value not redacted: %s", s)
}

func TestWithRequestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := newRecServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
			w.WriteHeader(204)
		case <-r.Context().Done():
		}
	})
	defer close(release)
	// The call's timeout replaces the client's longer one...
	c := newTestClient(t, srv.URL, WithTimeout(20*time.Second))
	start := time.Now()
	_, err := c.Agents.Get(context.Background(), "a1", WithRequestTimeout(100*time.Millisecond))
	wantNetwork(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "%v after %v", err, time.Since(start))
	assert.LessOrEqual(t, time.Since(start), 10*time.Second, "%v after %v", err, time.Since(start))
	// ... and a shorter one.
	srv.setHandler(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(300 * time.Millisecond):
			w.WriteHeader(204)
		case <-r.Context().Done():
		}
	})
	short := newTestClient(t, srv.URL, WithTimeout(50*time.Millisecond))
	assert.NoError(t, short.Agents.Revoke(context.Background(), "a1", "", WithRequestTimeout(time.Minute)), "call timeout longer than the client's")
	_, err = short.Agents.Get(context.Background(), "a1")
	assert.ErrorIs(t, err, context.DeadlineExceeded, "without the option the client timeout applies: %v", err)
	srv.clear()
	for _, d := range []time.Duration{0, -time.Second} {
		_, err := c.Agents.Get(context.Background(), "a1", WithRequestTimeout(d))
		var ve *ValidationError
		assert.ErrorAs(t, err, &ve, "timeout %v: %v", d, err)
	}
	assert.Equal(t, 0, srv.count(), "invalid timeouts sent %d requests", srv.count())
}

func TestRequestRetryOptions(t *testing.T) {
	srv := newRecServer(t, reply(503, `{"error":"down"}`))
	var sl sleepRecorder
	c := newTestClient(t, srv.URL, withSleep(sl.sleep)) // DefaultRetryPolicy: two retries
	ctx := ctxT(t)
	// The client's backoffs stay under 1 s here, the call policy's above.
	own := RetryPolicy{MaxRetries: 3, InitialBackoff: 2 * time.Second, MaxBackoff: 2 * time.Second, MaxRetryAfter: time.Second}
	cases := []struct {
		name     string
		opts     []RequestOption
		requests int
		minSleep time.Duration // every recorded sleep at least this
	}{
		{"client policy", nil, 3, 0},
		{"no retries", []RequestOption{WithRequestMaxRetries(0)}, 1, 0},
		{"more retries", []RequestOption{WithRequestMaxRetries(5)}, 6, 0},
		{"own policy", []RequestOption{WithRequestRetryPolicy(own)}, 4, time.Second},
		{"policy then count", []RequestOption{WithRequestRetryPolicy(own), WithRequestMaxRetries(1)}, 2, time.Second},
		{"count then policy", []RequestOption{WithRequestMaxRetries(1), WithRequestRetryPolicy(own)}, 4, time.Second},
	}
	for _, tc := range cases {
		srv.clear()
		before := len(sl.got())
		_, err := c.Agents.Get(ctx, "a1", tc.opts...)
		var ae *AgentTrustError
		require.ErrorAs(t, err, &ae, "%s: %v", tc.name, err)
		assert.Equal(t, 503, ae.Status, "%s: %v", tc.name, err)
		n := srv.count()
		assert.Equal(t, tc.requests, n, "%s: %d requests, want %d", tc.name, n, tc.requests)
		for _, d := range sl.got()[before:] {
			assert.GreaterOrEqual(t, d, tc.minSleep, "%s: backoff %v, want at least %v", tc.name, d, tc.minSleep)
		}
	}
	// The client's own policy is unchanged by the calls above.
	srv.clear()
	_, _ = c.Agents.Get(ctx, "a1")
	n := srv.count()
	assert.Equal(t, 3, n, "client policy after per-call ones: %d requests", n)
	srv.clear()
	for _, o := range []RequestOption{WithRequestMaxRetries(-1), WithRequestRetryPolicy(RetryPolicy{InitialBackoff: -1})} {
		_, err := c.Agents.Get(ctx, "a1", o)
		var ve *ValidationError
		assert.ErrorAs(t, err, &ve, "%v", err)
	}
	assert.Equal(t, 0, srv.count(), "invalid retry options sent %d requests", srv.count())
}

// WithRequestRetryUntilDeadline retries past MaxRetries while the deadline
// allows, and only for calls safe to repeat.
func TestWithRequestRetryUntilDeadline(t *testing.T) {
	var n atomic.Int32
	srv := newRecServer(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= 6 {
			w.WriteHeader(503)
			return
		}
		_, _ = w.Write([]byte(`{"allowed":true}`))
	})
	c := newTestClient(t, srv.URL, WithRetryPolicy(RetryPolicy{MaxRetries: 2, InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := c.Actions.Check(ctx, ActionCheckParams{AgentID: "a1"})
	require.Error(t, err, "without the option: %v after %d requests", err, srv.count())
	require.Equal(t, 3, srv.count(), "without the option: %v after %d requests", err, srv.count())
	res, err := c.Actions.Check(ctx, ActionCheckParams{AgentID: "a1"}, WithRequestRetryUntilDeadline())
	require.NoError(t, err, "with the option: %v after %d requests", err, srv.count())
	require.True(t, res.Allowed, "with the option: %v after %d requests", err, srv.count())
	require.Equal(t, 7, srv.count(), "with the option: %v after %d requests", err, srv.count())
	// Not for a call that is not safe to repeat.
	srv.clear()
	n.Store(0)
	_, err = c.Telemetry.Report(ctx, TelemetryReportParams{AgentID: "a1"}, WithRequestRetryUntilDeadline())
	assert.Error(t, err, "non-idempotent call: %v after %d requests", err, srv.count())
	assert.Equal(t, 1, srv.count(), "non-idempotent call: %v after %d requests", err, srv.count())
}

func TestWithResponseInto(t *testing.T) {
	var n atomic.Int32
	srv := newRecServer(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.WriteHeader(503)
			return
		}
		w.Header().Set("X-Request-Id", "req-"+testKey)
		w.Header().Set("X-Extra", "e1")
		w.WriteHeader(201)
		_, _ = w.Write([]byte(`{"id":"a1","name":"bot"}`))
	})
	c := newTestClient(t, srv.URL)
	var meta Response
	a, err := c.Agents.Get(ctxT(t), "a1", WithResponseInto(&meta))
	require.NoError(t, err, "%v", a)
	require.Equal(t, "a1", a.ID, "%v %v", a, err)
	assert.Equal(t, 201, meta.StatusCode, "meta %+v", meta)
	assert.Equal(t, "e1", meta.Header.Get("X-Extra"), "meta %+v", meta)
	assert.Equal(t, "req-[redacted]", meta.RequestID, "meta %+v", meta)
	assert.Equal(t, 2, meta.Attempts, "meta %+v", meta)
	// A 2xx that fails to decode still fills it; a failure leaves it alone.
	srv.setHandler(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{"id":`)) })
	meta = Response{}
	_, err = c.Agents.Get(ctxT(t), "a1", WithResponseInto(&meta))
	assert.Error(t, err, "decode error: %v, meta %+v", err, meta)
	assert.Equal(t, 200, meta.StatusCode, "decode error: %v, meta %+v", err, meta)
	srv.setHandler(reply(404, `{}`))
	meta = Response{StatusCode: -1}
	_, err = c.Agents.Get(ctxT(t), "a1", WithResponseInto(&meta))
	assert.Error(t, err, "404: %v, meta %+v", err, meta)
	assert.Equal(t, -1, meta.StatusCode, "404: %v, meta %+v", err, meta)
	srv.clear()
	_, err = c.Agents.Get(ctxT(t), "a1", WithResponseInto(nil))
	var ve *ValidationError
	require.ErrorAs(t, err, &ve, "nil dst: %v, %d requests", err, srv.count())
	assert.Equal(t, 0, srv.count(), "nil dst: %v, %d requests", err, srv.count())
	// The zero option does nothing.
	srv.setHandler(reply(200, `{"id":"a1"}`))
	_, err = c.Agents.Get(ctxT(t), "a1", RequestOption{})
	assert.NoError(t, err, "zero option")
}

// Request options make Tokens.Issue bypass the cache: a cached token was not
// issued under them.
func TestIssueWithOptionsBypassesCache(t *testing.T) {
	srv := newRecServer(t, reply(200, `{"token":"at_1","expires_at":"2099-01-01T00:00:00Z","scopes":["s"]}`))
	c := newTestClient(t, srv.URL)
	p := TokenIssueParams{AgentID: "a1", Scopes: []string{"s"}}
	for i := 0; i < 2; i++ {
		_, err := c.Tokens.Issue(ctxT(t), p)
		require.NoError(t, err)
	}
	require.Equal(t, 1, srv.count(), "cached issue sent %d requests", srv.count())
	var meta Response
	_, err := c.Tokens.Issue(ctxT(t), p, WithResponseInto(&meta))
	require.NoError(t, err, "%v %+v", err, meta)
	require.Equal(t, 200, meta.StatusCode, "%v %+v", err, meta)
	assert.Equal(t, 2, srv.count(), "issue with options: %d requests", srv.count())
	assert.Equal(t, testKey, srv.requests()[1].Header.Get("X-Api-Key"), "issue with options: %d requests", srv.count())
}

func TestRequestOptionString(t *testing.T) {
	for _, tc := range []struct {
		o    RequestOption
		want string
	}{
		{WithRequestHeader("X-Tenant", "t1"), `agenttrust.WithRequestHeader("X-Tenant", [redacted])`},
		{WithRequestTimeout(2 * time.Second), "agenttrust.WithRequestTimeout(2s)"},
		{WithRequestMaxRetries(3), "agenttrust.WithRequestMaxRetries(3)"},
		{WithRequestRetryPolicy(RetryPolicy{MaxRetries: 1}), "agenttrust.WithRequestRetryPolicy({MaxRetries:1 InitialBackoff:0s MaxBackoff:0s MaxRetryAfter:0s})"},
		{WithRequestRetryUntilDeadline(), "agenttrust.WithRequestRetryUntilDeadline()"},
		{WithResponseInto(new(Response)), "agenttrust.WithResponseInto(...)"},
		{RequestOption{}, "agenttrust.RequestOption{}"},
	} {
		got := fmt.Sprintf("%v", tc.o)
		assert.Equal(t, tc.want, got, "got %s, want %s", got, tc.want)
	}
}

// Request options written in the call cost no allocation of their own: the
// variadic slice stays on the caller's stack. A header costs the one value
// slice net/http's Header needs, a max-retries option the policy it
// changes. Counted against a server that allocates nothing itself.
//
// Each count is an exact mean over 1,000 calls, the least of five taken in
// turns with the others. testing.AllocsPerRun rounds down, so a mean a hair
// above a whole number could read one lower in the baseline than with an
// option that costs nothing. And a count takes in allocations that are not
// the call's, never fewer: under -race, a few tenths per call from the
// sync.Pools' random drops (see meanAllocs); on a loaded machine, the
// server's goroutines and the runtime's, at different moments for
// different counts. Long counts taken in turns, and the least of five,
// bring that down to about a tenth (it is 0 without -race), and half an
// allocation tells it from an allocation per call.
func TestRequestOptionAllocs(t *testing.T) {
	c := newTestClient(t, rawAnswerServer(t))
	ctx := context.Background()
	var meta Response
	cases := optionCases(&meta)
	least := make([]float64, len(cases))
	for i := range least {
		least[i] = math.Inf(1)
	}
	for range 5 {
		for i, oc := range cases {
			least[i] = min(least[i], meanAllocs(1000, func() {
				if _, err := checkWithOption(ctx, c, oc.opt); err != nil {
					t.Fatal(err)
				}
			}))
		}
	}
	none := least[0]
	for i, oc := range cases[1:] {
		got := least[i+1]
		t.Logf("%s: %.2f allocs, none: %.2f", oc.name, got, none)
		assert.Less(t, got, none+oc.extra+0.5, "%s allocates %.2f times, a check without options %.2f", oc.name, got, none)
	}
}
