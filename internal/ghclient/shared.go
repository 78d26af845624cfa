package ghclient

import "sync"

// sharedValues are what the steps of one process keep per client, made on
// first use.
type sharedValues struct {
	mu sync.Mutex
	m  map[string]any
}

// Shared returns the value kept under name for this client (one API host,
// identity and repository in one Pool), made by mk the first time. It lets
// parts of the process that know nothing of each other share what they
// learn of one repository (the runs listings of internal/runlist: waits
// and dispatch searches read one listing), without a registry of their
// own, and never across identities: what one token may read is never
// handed to another.
func (c *Client) Shared(name string, mk func() any) any {
	c.shared.mu.Lock()
	defer c.shared.mu.Unlock()
	if c.shared.m == nil {
		c.shared.m = map[string]any{}
	}
	v, ok := c.shared.m[name]
	if !ok {
		v = mk()
		c.shared.m[name] = v
	}
	return v
}
