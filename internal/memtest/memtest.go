// Package memtest measures what a piece of code allocates, for tests that
// hold hostile input to a memory bound.
package memtest

import "runtime"

// Allocated is how many bytes f allocates in this process (everything the
// test runs meanwhile included: client and test server alike).
func Allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
