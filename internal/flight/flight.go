// Package flight collapses concurrent requests for the same work into one
// call, with one cancellation behaviour for every user in the SDK (the
// Tokens.Issue cache, agent credentials and the tokenauth verifier).
package flight

import (
	"context"
	"sync"
	"time"
)

// Group runs at most one call per key at a time and shares its outcome with
// every caller that asks for that key while it runs.
//
// The behaviour, the same for every user:
//
//   - The call runs on a goroutine of its own, under a context that keeps
//     the values of the caller that started it but none of its
//     cancellation: no single caller giving up fails the others. Timeout,
//     when positive, bounds the call; when zero, fn must bound itself (the
//     SDK's requests are bounded by the client's timeout).
//   - Each caller waits only as long as its own context allows. When it ends
//     first, Do returns at once with WaitErr(ctx.Err()) and the call goes on
//     for the others. A caller whose context has already ended starts
//     nothing.
//   - The outcome, error included, goes to the callers waiting for it and is
//     then forgotten: a failure is not remembered, the next Do calls again.
//
// The value is shared by every caller of one call: none may modify it.
// The zero Group is ready to use; a Group must not be copied after first
// use.
type Group[K comparable, V any] struct {
	// Timeout bounds each call when positive.
	Timeout time.Duration
	// WaitErr turns the error of a caller's ended context into the error
	// Do returns; nil returns it unchanged.
	WaitErr func(ctxErr error) error

	mu    sync.Mutex
	calls map[K]*call[V]
}

type call[V any] struct {
	done chan struct{}
	// val and err are written before done is closed and read only after.
	val V
	err error
	// waiters counts the callers waiting; guarded by the group's lock.
	waiters int
}

// Do returns the outcome of the call for key, starting fn unless a call for
// key is in progress.
//
// Before it starts a call, Do asks recheck (when non-nil), under the group's
// lock, whether the value has become available: a caller that missed its
// cache just before a call stored its value and ended then takes that value
// instead of calling again. For this to hold, fn must store its value before
// it returns. recheck must not call back into the group.
func (g *Group[K, V]) Do(ctx context.Context, key K, recheck func() (V, bool), fn func(context.Context) (V, error)) (V, error) {
	if err := ctx.Err(); err != nil {
		var zero V
		return zero, g.waitErr(err)
	}
	g.mu.Lock()
	c, ok := g.calls[key]
	if !ok {
		if recheck != nil {
			if v, ok := recheck(); ok {
				g.mu.Unlock()
				return v, nil
			}
		}
		if g.calls == nil {
			g.calls = make(map[K]*call[V])
		}
		c = &call[V]{done: make(chan struct{})}
		g.calls[key] = c
		go g.run(context.WithoutCancel(ctx), key, c, fn)
	}
	c.waiters++
	g.mu.Unlock()

	select {
	case <-c.done:
		return c.val, c.err
	case <-ctx.Done():
		g.mu.Lock()
		c.waiters--
		g.mu.Unlock()
		var zero V
		return zero, g.waitErr(ctx.Err())
	}
}

func (g *Group[K, V]) run(ctx context.Context, key K, c *call[V], fn func(context.Context) (V, error)) {
	if g.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.Timeout)
		defer cancel()
	}
	v, err := fn(ctx)
	g.mu.Lock()
	delete(g.calls, key)
	c.val, c.err = v, err
	g.mu.Unlock()
	close(c.done)
}

func (g *Group[K, V]) waitErr(err error) error {
	if g.WaitErr != nil {
		return g.WaitErr(err)
	}
	return err
}

// Waiters returns how many callers wait for the call for key, 0 when none
// is in progress. It is for tests and debugging.
func (g *Group[K, V]) Waiters(key K) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c, ok := g.calls[key]; ok {
		return c.waiters
	}
	return 0
}

// Len returns how many calls are in progress. It is for tests and
// debugging.
func (g *Group[K, V]) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.calls)
}
