package flight

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type ctxKey struct{}

func waitWaiters(t *testing.T, g *Group[string, int], key string, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); g.Waiters(key) != n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters, want %d", g.Waiters(key), n)
		}
	}
}

// Concurrent callers of one key share one call and its value; other keys
// get calls of their own.
func TestConcurrentCallersShareOneCall(t *testing.T) {
	var g Group[string, int]
	var calls atomic.Int32
	release := make(chan struct{})
	fn := func(context.Context) (int, error) { calls.Add(1); <-release; return 42, nil }
	const n = 50
	var wg sync.WaitGroup
	vals := make([]int, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) { defer wg.Done(); vals[i], errs[i] = g.Do(context.Background(), "k", nil, fn) }(i)
	}
	waitWaiters(t, &g, "k", n)
	other, err := g.Do(context.Background(), "other", nil, func(context.Context) (int, error) { return 7, nil })
	if other != 7 || err != nil {
		t.Fatalf("other key: %v %v", other, err)
	}
	close(release)
	wg.Wait()
	if c := calls.Load(); c != 1 {
		t.Fatalf("%d calls for %d concurrent callers", c, n)
	}
	for i := range vals {
		if vals[i] != 42 || errs[i] != nil {
			t.Fatalf("caller %d: %v %v", i, vals[i], errs[i])
		}
	}
	if g.Len() != 0 {
		t.Errorf("%d calls left in progress", g.Len())
	}
}

// The call keeps the starter's values but not its cancellation: the starter
// leaving returns its own error at once and the call completes for the
// caller still waiting. WaitErr shapes the leaver's error.
func TestCallIsDetachedAndEachCallerWaitsOnItsOwnContext(t *testing.T) {
	wrapped := errors.New("wrapped")
	g := Group[string, int]{WaitErr: func(err error) error { return errors.Join(wrapped, err) }}
	started := make(chan context.Context, 1)
	release := make(chan struct{})
	fn := func(ctx context.Context) (int, error) {
		started <- ctx
		<-release
		return 1, ctx.Err() // a cancelled call would report it here
	}
	starterCtx, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "v"))
	starter := make(chan error, 1)
	go func() { _, err := g.Do(starterCtx, "k", nil, fn); starter <- err }()
	callCtx := <-started
	if callCtx.Value(ctxKey{}) != "v" {
		t.Error("the call lost the starter's values")
	}
	follower := make(chan error, 1)
	go func() {
		v, err := g.Do(context.Background(), "k", nil, fn)
		if err == nil && v != 1 {
			err = errors.New("wrong value")
		}
		follower <- err
	}()
	waitWaiters(t, &g, "k", 2)
	cancel()
	if err := <-starter; !errors.Is(err, context.Canceled) || !errors.Is(err, wrapped) {
		t.Fatalf("starter: %v", err)
	}
	waitWaiters(t, &g, "k", 1)
	if callCtx.Err() != nil {
		t.Fatal("the starter's cancellation reached the call")
	}
	close(release)
	if err := <-follower; err != nil {
		t.Fatalf("follower: %v", err)
	}
}

// Timeout bounds the call even though no caller's context does.
func TestTimeoutBoundsTheCall(t *testing.T) {
	g := Group[string, int]{Timeout: 20 * time.Millisecond}
	_, err := g.Do(context.Background(), "k", nil, func(ctx context.Context) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the call's deadline", err)
	}
}

// A caller whose context has ended starts nothing; a failure is not
// remembered.
func TestDoneContextAndFailures(t *testing.T) {
	var g Group[string, int]
	var calls atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := g.Do(ctx, "k", nil, func(context.Context) (int, error) { calls.Add(1); return 1, nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("done ctx: %v", err)
	}
	if calls.Load() != 0 {
		t.Fatal("a done context started a call")
	}
	boom := errors.New("boom")
	if _, err := g.Do(context.Background(), "k", nil, func(context.Context) (int, error) { calls.Add(1); return 0, boom }); err != boom {
		t.Fatalf("failure: %v", err)
	}
	if v, err := g.Do(context.Background(), "k", nil, func(context.Context) (int, error) { calls.Add(1); return 2, nil }); v != 2 || err != nil {
		t.Fatalf("after a failure: %v %v", v, err)
	}
	if calls.Load() != 2 {
		t.Errorf("%d calls, want 2", calls.Load())
	}
}

// recheck is asked before a call starts, and not when one is in progress
// to join; a value it finds is returned without calling.
func TestRecheck(t *testing.T) {
	var g Group[string, int]
	var rechecks, calls atomic.Int32
	found := func() (int, bool) { rechecks.Add(1); return 9, true }
	v, err := g.Do(context.Background(), "k", found, func(context.Context) (int, error) { calls.Add(1); return 1, nil })
	if v != 9 || err != nil || calls.Load() != 0 {
		t.Fatalf("got %v %v after %d calls, want the rechecked value and no call", v, err, calls.Load())
	}
	release := make(chan struct{})
	first := make(chan int, 1)
	go func() {
		v, _ := g.Do(context.Background(), "k", func() (int, bool) { return 0, false }, func(context.Context) (int, error) {
			calls.Add(1)
			<-release
			return 1, nil
		})
		first <- v
	}()
	waitWaiters(t, &g, "k", 1)
	second := make(chan int, 1)
	go func() { v, _ := g.Do(context.Background(), "k", found, nil); second <- v }()
	waitWaiters(t, &g, "k", 2)
	close(release)
	if a, b := <-first, <-second; a != 1 || b != 1 {
		t.Fatalf("got %d and %d, want both from the call", a, b)
	}
	if rechecks.Load() != 1 || calls.Load() != 1 {
		t.Errorf("%d rechecks and %d calls, want 1 and 1", rechecks.Load(), calls.Load())
	}
}
