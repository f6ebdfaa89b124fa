package flight

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type ctxKey struct{}

func waitWaiters(t *testing.T, g *Group[string, int], key string, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return g.Waiters(key) == n }, 10*time.Second, time.Millisecond,
		"waiting for %d waiters on %q", n, key)
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
	require.EqualValues(t, 7, other, "other key: %v %v", other, err)
	require.NoError(t, err, "other key: %v %v", other, err)
	close(release)
	wg.Wait()
	c := calls.Load()
	require.EqualValues(t, 1, c, "%d calls for %d concurrent callers", c, n)
	for i := range vals {
		require.EqualValues(t, 42, vals[i], "caller %d: %v %v", i, vals[i], errs[i])
		require.NoError(t, errs[i], "caller %d: %v %v", i, vals[i], errs[i])
	}
	assert.EqualValues(t, 0, g.Len(), "%d calls left in progress", g.Len())
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
	assert.Equal(t, "v", callCtx.Value(ctxKey{}), "the call lost the starter's values")
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
	err := <-starter
	require.ErrorIs(t, err, context.Canceled, "starter: %v", err)
	require.ErrorIs(t, err, wrapped, "starter: %v", err)
	waitWaiters(t, &g, "k", 1)
	require.NoError(t, callCtx.Err(), "the starter's cancellation reached the call")
	close(release)
	require.NoError(t, <-follower, "follower")
}

// Timeout bounds the call even though no caller's context does.
func TestTimeoutBoundsTheCall(t *testing.T) {
	g := Group[string, int]{Timeout: 20 * time.Millisecond}
	_, err := g.Do(context.Background(), "k", nil, func(ctx context.Context) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	})
	require.ErrorIs(t, err, context.DeadlineExceeded, "got %v, want the call's deadline", err)
}

// A caller whose context has ended starts nothing; a failure is not
// remembered.
func TestDoneContextAndFailures(t *testing.T) {
	var g Group[string, int]
	var calls atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := g.Do(ctx, "k", nil, func(context.Context) (int, error) { calls.Add(1); return 1, nil })
	require.ErrorIs(t, err, context.Canceled, "done ctx: %v", err)
	require.EqualValues(t, 0, calls.Load(), "a done context started a call")
	boom := errors.New("boom")
	_, err = g.Do(context.Background(), "k", nil, func(context.Context) (int, error) { calls.Add(1); return 0, boom })
	require.Same(t, boom, err, "failure: %v", err)
	v, err := g.Do(context.Background(), "k", nil, func(context.Context) (int, error) { calls.Add(1); return 2, nil })
	require.EqualValues(t, 2, v, "after a failure: %v %v", v, err)
	require.NoError(t, err, "after a failure: %v %v", v, err)
	assert.EqualValues(t, 2, calls.Load(), "%d calls, want 2", calls.Load())
}

// recheck is asked before a call starts, and not when one is in progress
// to join; a value it finds is returned without calling.
func TestRecheck(t *testing.T) {
	var g Group[string, int]
	var rechecks, calls atomic.Int32
	found := func() (int, bool) { rechecks.Add(1); return 9, true }
	v, err := g.Do(context.Background(), "k", found, func(context.Context) (int, error) { calls.Add(1); return 1, nil })
	require.EqualValues(t, 9, v, "got %v %v after %d calls, want the rechecked value and no call", v, err, calls.Load())
	require.NoError(t, err, "got %v %v after %d calls, want the rechecked value and no call", v, err, calls.Load())
	require.EqualValues(t, 0, calls.Load(), "got %v %v after %d calls, want the rechecked value and no call", v, err, calls.Load())
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
	a, b := <-first, <-second
	require.EqualValues(t, 1, a, "got %d and %d, want both from the call", a, b)
	require.EqualValues(t, 1, b, "got %d and %d, want both from the call", a, b)
	assert.EqualValues(t, 1, rechecks.Load(), "%d rechecks and %d calls, want 1 and 1", rechecks.Load(), calls.Load())
	assert.EqualValues(t, 1, calls.Load(), "%d rechecks and %d calls, want 1 and 1", rechecks.Load(), calls.Load())
}
