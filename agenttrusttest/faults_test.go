package agenttrusttest

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFaultStatusAndTimes(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	agentID := srv.CreateAgent("bot")
	srv.InjectFault("POST /api/v1/agenttrust/check", Fault{Status: 429, RetryAfter: "2", Times: 2})

	for i := 0; i < 2; i++ {
		r := c.auth("POST", "/api/v1/agenttrust/check", checkBody(agentID, "", "t")).must(t, 429)
		require.Equal(t, "2", r.header.Get("Retry-After"), "fault %d: %v %s", i, r.header, r.raw)
		require.Equal(t, "injected fault", r.errMsg(), "fault %d: %v %s", i, r.header, r.raw)
		require.NotEqual(t, "", r.header.Get("X-Request-ID"), "fault %d: %v %s", i, r.header, r.raw)
	}
	c.auth("POST", "/api/v1/agenttrust/check", checkBody(agentID, "", "t")).must(t, 200)
	// Faults are per endpoint and apply before authentication.
	srv.InjectFault("GET /api/v1/agents/{agent_id}", Fault{Status: 503, Body: `{"message": "down"}`})
	c.key = ""
	for i := 0; i < 3; i++ {
		r := c.gw("GET", "/api/v1/agents/"+agentID, "").must(t, 503)
		require.Equal(t, "down", r.str("message"), "custom body %s", r.raw)
	}
	c.gw("GET", "/api/v1/agents", "").must(t, 401)
	srv.ClearFaults()
	c.key = srv.APIKey()
	c.gw("GET", "/api/v1/agents/"+agentID, "").must(t, 200)
	// Only the first two checks were recorded as accepted checks.
	n := len(srv.Checks())
	require.EqualValues(t, 1, n, "%d checks recorded", n)
}

func TestFaultMalformedAndDrop(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	srv.InjectFault("GET /health", Fault{Malformed: true, Times: 1})
	r := c.gw("GET", "/health", "").must(t, 200)
	require.Nil(t, r.json, "malformed body decoded: %s", r.raw)
	require.NotEmpty(t, r.raw, "malformed body decoded: %s", r.raw)

	// A fresh connection: Go's transport would transparently retry an
	// idempotent request on a reused one.
	srv.InjectFault("GET /health", Fault{Drop: true, Times: 1})
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr}).Get(srv.URL() + "/health")
	if err == nil {
		res.Body.Close()
		t.Fatal("dropped connection gave a response")
	}
	c.gw("GET", "/health", "").must(t, 200)
	// The dropped request was recorded.
	n := len(srv.Requests())
	require.EqualValues(t, 3, n, "%d requests recorded", n)
}

func TestFaultLatency(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	srv.InjectFault("GET /health", Fault{Latency: 150 * time.Millisecond, RetryAfter: "7"})
	start := time.Now()
	r := c.gw("GET", "/health", "").must(t, 200)
	el := time.Since(start)
	require.GreaterOrEqual(t, el, 150*time.Millisecond, "answered after %v", el)
	require.Equal(t, "ok", r.str("status"), "latency-only fault changed the answer: %v %s", r.header, r.raw)
	require.Equal(t, "7", r.header.Get("Retry-After"), "latency-only fault changed the answer: %v %s", r.header, r.raw)

	// A client that gives up is not waited for.
	srv.InjectFault("GET /health", Fault{Latency: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL()+"/health", nil)
	_, err := c.hc.Do(req)
	require.ErrorIs(t, err, context.DeadlineExceeded, "err %v", err)
}

func TestFaultLatencyAbortedByClose(t *testing.T) {
	srv, err := NewServer()
	require.NoError(t, err)
	srv.InjectFault("GET /health", Fault{Latency: time.Hour})
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	done := make(chan error, 1)
	go func() {
		res, err := (&http.Client{Transport: tr}).Get(srv.URL() + "/health")
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		done <- err
	}()
	require.Eventually(t, func() bool { return len(srv.Requests()) > 0 }, 5*time.Second, 5*time.Millisecond,
		"the request reached the server")
	start := time.Now()
	srv.Close()
	srv.Close() // idempotent
	el := time.Since(start)
	require.LessOrEqual(t, el, 5*time.Second, "Close took %v", el)
	require.Error(t, <-done, "request in injected latency was answered after Close")
}

func TestInjectFaultUnknownEndpointPanics(t *testing.T) {
	srv := NewTestServer(t)
	defer func() {
		r := recover()
		require.NotNil(t, r, "recover %v", r)
		require.Contains(t, r.(string), "unknown endpoint", "recover %v", r)
	}()
	srv.InjectFault("POST /api/v1/actions/check", Fault{Status: 500})
}
