package agenttrusttest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestFaultStatusAndTimes(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	agentID := srv.CreateAgent("bot")
	srv.InjectFault("POST /api/v1/agenttrust/check", Fault{Status: 429, RetryAfter: "2", Times: 2})

	for i := 0; i < 2; i++ {
		r := c.auth("POST", "/api/v1/agenttrust/check", checkBody(agentID, "", "t")).must(t, 429)
		if r.header.Get("Retry-After") != "2" || r.errMsg() != "injected fault" || r.header.Get("X-Request-ID") == "" {
			t.Fatalf("fault %d: %v %s", i, r.header, r.raw)
		}
	}
	c.auth("POST", "/api/v1/agenttrust/check", checkBody(agentID, "", "t")).must(t, 200)
	// Faults are per endpoint and apply before authentication.
	srv.InjectFault("GET /api/v1/agents/{agent_id}", Fault{Status: 503, Body: `{"message": "down"}`})
	c.key = ""
	for i := 0; i < 3; i++ {
		if r := c.gw("GET", "/api/v1/agents/"+agentID, "").must(t, 503); r.str("message") != "down" {
			t.Fatalf("custom body %s", r.raw)
		}
	}
	c.gw("GET", "/api/v1/agents", "").must(t, 401)
	srv.ClearFaults()
	c.key = srv.APIKey()
	c.gw("GET", "/api/v1/agents/"+agentID, "").must(t, 200)
	// Only the first two checks were recorded as accepted checks.
	if n := len(srv.Checks()); n != 1 {
		t.Fatalf("%d checks recorded", n)
	}
}

func TestFaultMalformedAndDrop(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	srv.InjectFault("GET /health", Fault{Malformed: true, Times: 1})
	r := c.gw("GET", "/health", "").must(t, 200)
	if r.json != nil || len(r.raw) == 0 {
		t.Fatalf("malformed body decoded: %s", r.raw)
	}

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
	if n := len(srv.Requests()); n != 3 {
		t.Fatalf("%d requests recorded", n)
	}
}

func TestFaultLatency(t *testing.T) {
	srv := NewTestServer(t)
	c := newClient(t, srv)
	srv.InjectFault("GET /health", Fault{Latency: 150 * time.Millisecond, RetryAfter: "7"})
	start := time.Now()
	r := c.gw("GET", "/health", "").must(t, 200)
	if el := time.Since(start); el < 150*time.Millisecond {
		t.Fatalf("answered after %v", el)
	}
	if r.str("status") != "ok" || r.header.Get("Retry-After") != "7" {
		t.Fatalf("latency-only fault changed the answer: %v %s", r.header, r.raw)
	}

	// A client that gives up is not waited for.
	srv.InjectFault("GET /health", Fault{Latency: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL()+"/health", nil)
	if _, err := c.hc.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
}

func TestFaultLatencyAbortedByClose(t *testing.T) {
	srv, err := NewServer()
	if err != nil {
		t.Fatal(err)
	}
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
	for len(srv.Requests()) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	srv.Close()
	srv.Close() // idempotent
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("Close took %v", el)
	}
	if err := <-done; err == nil {
		t.Fatal("request in injected latency was answered after Close")
	}
}

func TestInjectFaultUnknownEndpointPanics(t *testing.T) {
	srv := NewTestServer(t)
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "unknown endpoint") {
			t.Fatalf("recover %v", r)
		}
	}()
	srv.InjectFault("POST /api/v1/actions/check", Fault{Status: 500})
}
