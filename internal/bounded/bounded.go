// Package bounded is a map with a size and an age limit, for the caches and
// memories that live as long as a controller: past the limits the oldest
// entries go, so no input pattern makes them grow without end.
package bounded

import (
	"sync"
	"time"
)

// Map is a mutex-guarded map whose entries expire after a maximum age and
// whose oldest entries are evicted beyond a maximum size. The zero value is
// ready to use.
type Map[K comparable, V any] struct {
	mu      sync.Mutex
	entries map[K]entry[V]
}

type entry[V any] struct {
	v  V
	at time.Time
}

// Put stores v under k, evicting expired entries, then the oldest, to stay
// within max entries.
func (m *Map[K, V]) Put(k K, v V, max int, age time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.entries == nil {
		m.entries = map[K]entry[V]{}
	}
	if _, ok := m.entries[k]; !ok && len(m.entries) >= max {
		m.evict(max, age)
	}
	m.entries[k] = entry[V]{v: v, at: time.Now()}
}

// Get returns the value under k unless it is older than age.
func (m *Map[K, V]) Get(k K, age time.Duration) (V, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[k]
	if !ok || time.Since(e.at) > age {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Update replaces the value under k with f's result, atomically, when k is
// present and younger than age. It reports whether f ran.
func (m *Map[K, V]) Update(k K, age time.Duration, f func(V) (V, bool)) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[k]
	if !ok || time.Since(e.at) > age {
		return false
	}
	v, keep := f(e.v)
	if keep {
		m.entries[k] = entry[V]{v: v, at: e.at}
	}
	return keep
}

// Delete removes k.
func (m *Map[K, V]) Delete(k K) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.entries, k)
}

// Len is the number of entries, expired ones included until evicted.
func (m *Map[K, V]) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}

// evict drops expired entries and, if still full, the oldest quarter.
func (m *Map[K, V]) evict(max int, age time.Duration) {
	for k, e := range m.entries {
		if time.Since(e.at) > age {
			delete(m.entries, k)
		}
	}
	for len(m.entries) >= max {
		var oldest K
		var at time.Time
		first := true
		for k, e := range m.entries {
			if first || e.at.Before(at) {
				oldest, at, first = k, e.at, false
			}
		}
		delete(m.entries, oldest)
	}
}
