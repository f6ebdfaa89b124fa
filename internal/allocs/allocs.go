// Package allocs counts the allocations of a call for the SDK's tests, in
// a way that a loaded machine cannot fail.
//
// testing.AllocsPerRun counts every allocation the process makes while it
// runs, the other goroutines' included: an earlier test's server winding
// down, a timer, the runtime. On a busy machine the call under test runs
// slowly and those take more of the count; a call that allocates nothing
// has been seen to read 9. They only ever add, so the least of a few
// counts is the call's own.
package allocs

import (
	"math"
	"testing"
)

// Tries is how many counts Least takes.
const Tries = 3

// Least returns the least of Tries counts of testing.AllocsPerRun(runs, f),
// each rounded down as AllocsPerRun rounds it. When setup is not nil it
// runs before each count, outside it (to empty a queue that the counted
// calls fill, say).
func Least(runs int, setup, f func()) float64 {
	least := math.Inf(1)
	for range Tries {
		if setup != nil {
			setup()
		}
		least = min(least, testing.AllocsPerRun(runs, f))
	}
	return least
}
