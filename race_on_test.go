//go:build race

package agenttrust

// raceEnabled reports a -race build, in which crypto/rand.Read moves the
// buffer it fills to the heap: allocation bounds allow for it.
const raceEnabled = true
