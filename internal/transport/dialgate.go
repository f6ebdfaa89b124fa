package transport

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// DialFunc is the signature of http.Transport.DialContext.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// DefaultGateWait bounds how long a DialGate holds a dial back.
const DefaultGateWait = 300 * time.Millisecond

// errDialNotNeeded is the cause of a dial the gate gave up on.
var errDialNotNeeded = errors.New("dial held back: no request was left waiting for a connection")

// DialGate keeps an http.Transport from opening connections that no request
// needs.
//
// When a request finds no idle connection, net/http starts a dial for it; if
// a connection is freed before the dial completes, the request takes the
// freed one and the dial, once done, adds a connection nobody asked for to
// the pool. Under concurrency this opens noticeably more connections than
// there are concurrent requests. The gate counts, per dial address, the
// requests in flight (Request.Gate), the open connections and the dials in
// progress, and lets a dial start only while some request has neither a
// connection nor a dial on its way (in flight > open + dialing). Any other
// dial waits until that changes: a request starts, a connection closes or a
// dial fails. After a bounded wait it gives up with a dial error; by then the
// request it was started for has, in all but broken cases, been served by
// another connection, and net/http drops the error unseen. Otherwise the
// request sees a dial failure, which nothing was written for and which the
// retry policy retries.
//
// A request to an address the gate has no slot for, or made after Close,
// dials at once.
type DialGate struct {
	next   DialFunc
	wait   time.Duration
	slots  map[string]*GateSlot // by dial address; fixed before first use
	done   chan struct{}        // closed by Close
	closed atomic.Bool
	once   sync.Once
}

// NewDialGate returns a gate in front of next (a zero net.Dialer when nil).
// wait bounds how long a dial is held back (DefaultGateWait when not
// positive).
func NewDialGate(next DialFunc, wait time.Duration) *DialGate {
	if wait <= 0 {
		wait = DefaultGateWait
	}
	if next == nil {
		next = (&net.Dialer{}).DialContext
	}
	return &DialGate{next: next, wait: wait, slots: make(map[string]*GateSlot), done: make(chan struct{})}
}

// Slot returns the counters of the dial address addr ("host:port", as
// net/http dials it), creating them. Every Slot call must happen before the
// gate's first dial: the table is not locked afterwards.
func (g *DialGate) Slot(addr string) *GateSlot {
	if s := g.slots[addr]; s != nil {
		return s
	}
	s := &GateSlot{gate: g}
	g.slots[addr] = s
	return s
}

// Close turns the gate off: the dials waiting at it go ahead at once, and
// later dials go straight through. It is idempotent.
func (g *DialGate) Close() {
	g.once.Do(func() {
		g.closed.Store(true)
		close(g.done)
	})
}

// DialContext is the gated dial, for http.Transport.DialContext.
func (g *DialGate) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	s := g.slots[addr]
	if s == nil || g.closed.Load() {
		return g.next(ctx, network, addr)
	}
	if err := s.acquire(ctx); err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	c, err := g.next(ctx, network, addr)
	if err != nil {
		s.mu.Lock()
		s.dialing.Add(-1)
		s.broadcastLocked()
		s.mu.Unlock()
		return nil, err
	}
	// One step under the lock: a waiter must never see the connection
	// counted twice (open and dialing) and then miss the correction.
	s.mu.Lock()
	s.open.Add(1)
	s.dialing.Add(-1)
	s.mu.Unlock()
	return &gatedConn{Conn: c, slot: s}, nil
}

// GateSlot holds a DialGate's counters for one dial address. Its methods
// are safe for concurrent use.
type GateSlot struct {
	gate     *DialGate
	inFlight atomic.Int64 // requests between Begin and End
	open     atomic.Int64 // connections dialed and not yet closed
	dialing  atomic.Int64 // dials let through and not yet done
	waiters  atomic.Int64 // dials waiting in acquire

	mu   sync.Mutex
	wake chan struct{} // closed to wake the waiters; nil when none wait
}

// Begin counts a request in flight; End must follow once the request's
// response body is closed (or it failed). They only touch atomics, unless a
// dial is waiting that the new request may need.
func (s *GateSlot) Begin() {
	n := s.inFlight.Add(1)
	if s.waiters.Load() > 0 && n > s.open.Load()+s.dialing.Load() {
		s.mu.Lock()
		s.broadcastLocked()
		s.mu.Unlock()
	}
}

// End ends what Begin started. Fewer requests never let a dial through, so
// it wakes nobody.
func (s *GateSlot) End() { s.inFlight.Add(-1) }

// InFlight reports the requests counted in flight.
func (s *GateSlot) InFlight() int64 { return s.inFlight.Load() }

// Open reports the connections dialed through the gate and not yet closed.
func (s *GateSlot) Open() int64 { return s.open.Load() }

// Dialing reports the dials let through and not yet done.
func (s *GateSlot) Dialing() int64 { return s.dialing.Load() }

// Waiting reports the dials held back.
func (s *GateSlot) Waiting() int64 { return s.waiters.Load() }

// broadcastLocked wakes every waiting dial to look again. s.mu is held.
func (s *GateSlot) broadcastLocked() {
	if s.wake != nil {
		close(s.wake)
		s.wake = nil
	}
}

// acquire waits until a request needs a new connection, then counts a dial
// in progress. It fails when the wait runs out or ctx ends; once the gate
// is closed, it lets the dial go ahead.
func (s *GateSlot) acquire(ctx context.Context) error {
	// waiters is raised before the counters are read, and Begin raises
	// inFlight before reading waiters: one of the two sees the other, so a
	// request that starts now is never missed.
	s.waiters.Add(1)
	defer s.waiters.Add(-1)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		s.mu.Lock()
		if s.inFlight.Load() > s.open.Load()+s.dialing.Load() {
			s.dialing.Add(1)
			s.mu.Unlock()
			return nil
		}
		if s.wake == nil {
			s.wake = make(chan struct{})
		}
		wake := s.wake
		s.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(s.gate.wait)
		}
		select {
		case <-wake:
		case <-timer.C:
			return errDialNotNeeded
		case <-s.gate.done:
			// Closing never fails a dial a request may still need: it
			// goes ahead (net/http closes connections nobody takes once
			// its idle connections have been closed).
			s.dialing.Add(1)
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// connClosed counts a connection closed and wakes the waiting dials.
func (s *GateSlot) connClosed() {
	s.open.Add(-1)
	if s.waiters.Load() > 0 {
		s.mu.Lock()
		s.broadcastLocked()
		s.mu.Unlock()
	}
}

// gatedConn is a connection counted by a GateSlot until its first Close.
type gatedConn struct {
	net.Conn
	slot   *GateSlot
	closed atomic.Bool
}

func (c *gatedConn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.slot.connClosed()
	}
	return err
}
