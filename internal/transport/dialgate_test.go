package transport

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// listen returns a loopback listener that accepts (and holds) connections
// until the test ends.
func listen(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var accepted []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			accepted = append(accepted, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		for _, c := range accepted {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// countingDial dials for real and counts the dials.
func countingDial(n *atomic.Int64) DialFunc {
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		n.Add(1)
		return d.DialContext(ctx, network, addr)
	}
}

// dialAsync starts a gated dial and returns its result channel.
func dialAsync(g *DialGate, addr string) chan error {
	ch := make(chan error, 1)
	go func() {
		c, err := g.DialContext(context.Background(), "tcp", addr)
		if c != nil {
			c.Close()
		}
		ch <- err
	}()
	return ch
}

// waitFor polls cond until it holds or 5 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestDialGateDialsWhileARequestLacksAConnection(t *testing.T) {
	addr := listen(t)
	var dials atomic.Int64
	g := NewDialGate(countingDial(&dials), 5*time.Second)
	s := g.Slot(addr)
	s.Begin()
	c, err := g.DialContext(context.Background(), "tcp", addr)
	require.NoError(t, err, "a request in flight with no connection: the dial goes at once")
	assert.EqualValues(t, 1, s.Open())
	assert.EqualValues(t, 0, s.Dialing())

	// The request has its connection: a second dial waits, and goes as soon
	// as a second request starts.
	ch := dialAsync(g, addr)
	waitFor(t, "the dial to wait", func() bool { return s.Waiting() == 1 })
	select {
	case err := <-ch:
		t.Fatalf("dial not held back: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	s.Begin()
	require.NoError(t, <-ch, "a new request releases the waiting dial")
	assert.EqualValues(t, 2, dials.Load())

	// Close counts once, however often it is called.
	require.NoError(t, c.Close())
	_ = c.Close()
	assert.EqualValues(t, 0, s.Open(), "both connections closed")
	s.End()
	s.End()
	assert.EqualValues(t, 0, s.InFlight())
}

func TestDialGateClosedConnectionReleasesADial(t *testing.T) {
	addr := listen(t)
	var dials atomic.Int64
	g := NewDialGate(countingDial(&dials), 5*time.Second)
	s := g.Slot(addr)
	s.Begin()
	defer s.End()
	c, err := g.DialContext(context.Background(), "tcp", addr)
	require.NoError(t, err)
	ch := dialAsync(g, addr)
	waitFor(t, "the dial to wait", func() bool { return s.Waiting() == 1 })
	require.NoError(t, c.Close())
	require.NoError(t, <-ch, "the request's connection closed: it needs a new one")
}

func TestDialGateFailedDialReleasesAnother(t *testing.T) {
	addr := listen(t)
	fail := make(chan struct{})
	var d net.Dialer
	var calls atomic.Int64
	g := NewDialGate(func(ctx context.Context, network, a string) (net.Conn, error) {
		if calls.Add(1) == 1 {
			<-fail
			return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("refused")}
		}
		return d.DialContext(ctx, network, a)
	}, 5*time.Second)
	s := g.Slot(addr)
	s.Begin()
	defer s.End()
	first := dialAsync(g, addr)
	waitFor(t, "the first dial", func() bool { return calls.Load() == 1 })
	second := dialAsync(g, addr)
	waitFor(t, "the second dial to wait", func() bool { return s.Waiting() == 1 })
	close(fail)
	require.Error(t, <-first)
	require.NoError(t, <-second, "the first dial failed: the request still needs one")
	assert.EqualValues(t, 0, s.Dialing())
}

func TestDialGateGivesUpWithADialError(t *testing.T) {
	addr := listen(t)
	var dials atomic.Int64
	g := NewDialGate(countingDial(&dials), 30*time.Millisecond)
	s := g.Slot(addr)
	start := time.Now()
	c, err := g.DialContext(context.Background(), "tcp", addr)
	require.Error(t, err, "no request in flight: nothing needs the connection")
	assert.Nil(t, c)
	assert.GreaterOrEqual(t, time.Since(start), 30*time.Millisecond)
	assert.True(t, isDialError(err), "a dial error, which the retry policy knows nothing was written for: %v", err)
	assert.EqualValues(t, 0, dials.Load())
	assert.EqualValues(t, 0, s.Waiting())
	assert.EqualValues(t, 0, s.Dialing())
}

func TestDialGateHonoursContext(t *testing.T) {
	addr := listen(t)
	var dials atomic.Int64
	g := NewDialGate(countingDial(&dials), 5*time.Second)
	g.Slot(addr)
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() {
		_, err := g.DialContext(ctx, "tcp", addr)
		ch <- err
	}()
	waitFor(t, "the dial to wait", func() bool { return g.Slot(addr).Waiting() == 1 })
	cancel()
	assert.ErrorIs(t, <-ch, context.Canceled)
	assert.EqualValues(t, 0, dials.Load())
}

func TestDialGateCloseLetsWaitingDialsGo(t *testing.T) {
	addr := listen(t)
	var dials atomic.Int64
	g := NewDialGate(countingDial(&dials), 5*time.Second)
	s := g.Slot(addr)
	var chs []chan error
	for i := 0; i < 5; i++ {
		chs = append(chs, dialAsync(g, addr))
	}
	waitFor(t, "the dials to wait", func() bool { return s.Waiting() == 5 })
	g.Close()
	g.Close()
	for _, ch := range chs {
		require.NoError(t, <-ch)
	}
	assert.EqualValues(t, 5, dials.Load())
	c, err := g.DialContext(context.Background(), "tcp", addr)
	require.NoError(t, err, "after Close every dial goes at once")
	c.Close()
}

func TestDialGateLeavesOtherAddressesAlone(t *testing.T) {
	addr := listen(t)
	var dials atomic.Int64
	g := NewDialGate(countingDial(&dials), 5*time.Second)
	g.Slot("127.0.0.1:1")
	c, err := g.DialContext(context.Background(), "tcp", addr)
	require.NoError(t, err)
	_, gated := c.(*gatedConn)
	assert.False(t, gated, "an address without a slot is neither held nor counted")
	c.Close()
}

// TestDialGateConcurrentRequests drives an http.Transport through the gate
// from many goroutines (run with -race): every request succeeds, none waits
// for the gate to give up, and the counters return to zero.
func TestDialGateConcurrentRequests(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	var dials atomic.Int64
	ht := &http.Transport{MaxIdleConnsPerHost: 100}
	g := NewDialGate(countingDial(&dials), 10*time.Second)
	ht.DialContext = g.DialContext
	defer ht.CloseIdleConnections()
	s := g.Slot(srv.Listener.Addr().String())
	tr := New(Config{HTTPClient: &http.Client{Transport: ht}})
	const workers = 32
	var wg sync.WaitGroup
	var mu sync.Mutex
	var slowest time.Duration
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				start := time.Now()
				resp, err := tr.Do(context.Background(), &Request{Method: http.MethodGet, URL: srv.URL, Idempotent: true, Gate: s})
				if !assert.NoError(t, err) || !assert.Equal(t, 200, resp.Status) {
					return
				}
				mu.Lock()
				slowest = max(slowest, time.Since(start))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	assert.Less(t, slowest, 5*time.Second, "a request waited for the gate to give up")
	assert.LessOrEqual(t, s.Open(), int64(workers), "more connections kept than requests ever in flight")
	assert.EqualValues(t, 0, s.InFlight())
	assert.EqualValues(t, 0, s.Dialing())
	assert.EqualValues(t, dials.Load(), s.Open(), "every dialed connection is still open (idle)")
	ht.CloseIdleConnections()
	waitFor(t, "the idle connections to close", func() bool { return s.Open() == 0 })
	g.Close()
}
