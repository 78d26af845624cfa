package bounded

import (
	"testing"
	"time"
)

func TestMapBounds(t *testing.T) {
	var m Map[int, string]
	for i := 0; i < 100; i++ {
		m.Put(i, "v", 10, time.Hour)
	}
	if m.Len() != 10 {
		t.Fatalf("%d entries, want 10", m.Len())
	}
	if _, ok := m.Get(99, time.Hour); !ok {
		t.Fatal("newest entry evicted")
	}
	if _, ok := m.Get(0, time.Hour); ok {
		t.Fatal("oldest entry kept")
	}
	m.Put(1000, "old", 10, time.Hour)
	if _, ok := m.Get(1000, -time.Second); ok {
		t.Fatal("an entry older than the age limit was returned")
	}
	if !m.Update(1000, time.Hour, func(v string) (string, bool) { return v + "!", true }) {
		t.Fatal("update of a present entry did not run")
	}
	if v, _ := m.Get(1000, time.Hour); v != "old!" {
		t.Fatalf("got %q", v)
	}
}
