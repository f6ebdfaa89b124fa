// Package runes cuts strings on rune boundaries, for the input summaries
// the core SDK and the guard send with action checks.
package runes

// Truncate returns s cut to at most n runes, on a rune boundary. Invalid
// UTF-8 bytes count as one rune each and are kept as they are.
func Truncate(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s // at most n bytes is at most n runes
	}
	count := 0
	for i := range s {
		if count == n {
			return s[:i]
		}
		count++
	}
	return s
}
