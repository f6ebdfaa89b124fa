// Package optcheck checks the values given to functional options, for the
// option sets of the core SDK and of tokenauth.
package optcheck

import "fmt"

// PositiveSize sets *dst to n when n is positive. Otherwise it leaves *dst
// alone and returns the error "<opt>: size must be positive, got <n>".
func PositiveSize(opt string, n int, dst *int) error {
	if n <= 0 {
		return fmt.Errorf("%s: size must be positive, got %d", opt, n)
	}
	*dst = n
	return nil
}
