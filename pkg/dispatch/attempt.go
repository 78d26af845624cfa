package dispatch

import (
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/bounded"
)

// Attempt is one dispatch as it goes from intent to run: plain data, so a
// caller that may die between two calls (a Kargo controller) can keep it in
// durable state and resume. Its life:
//
//  1. NewAttempt records the intent, before anything is sent. A caller that
//     persists state saves the Attempt now.
//  2. Send posts the dispatch once. From the moment the request may have
//     left this process, MaybeSent is true and the dispatch is never sent
//     again: its run is found (Find), or the attempt fails saying where to
//     look.
//  3. Find looks for the run, one request per call, until Run is set.
//
// An Attempt read back from state that this process did not create (the
// caller restarted) may have been sent by the process that died: CanSend
// says no, and only Find is left.
type Attempt struct {
	// ID names the attempt in this process's memory.
	ID string
	// Key is the correlation key put into Request.CorrelationInput, or "".
	Key string
	// IntentAt is when the attempt was recorded, before anything was sent
	// (local clock).
	IntentAt time.Time
	// SentAt is when the dispatch request started to leave (local clock);
	// zero when it has not, or when that is not known (after a restart).
	SentAt time.Time
	// MaybeSent is true once GitHub may have received the dispatch.
	MaybeSent bool
	// NotBefore is, on the server's clock, a time before GitHub received
	// the dispatch: a run created earlier is not this attempt's. Zero until
	// a response's Date header has made it known.
	NotBefore time.Time
	// Run is the run this attempt created, once known.
	Run *Result
}

// Start is when the dispatch was sent, or, when that is not known (an
// attempt resumed after a restart), when it was recorded: the time its
// timeout counts from and its messages name.
func (a *Attempt) Start() time.Time {
	if a.SentAt.IsZero() {
		return a.IntentAt
	}
	return a.SentAt
}

// Result is the run a dispatch created.
type Result struct {
	RunID   int64
	RunURL  string
	HTMLURL string
	// Method is ByRunDetails, ByRunListing or ByCorrelationKey.
	Method string
}

// How a dispatch learned its run.
const (
	// ByRunDetails: GitHub named the run in its answer to the dispatch.
	ByRunDetails = "run-details"
	// ByCorrelationKey: the run's title carried the attempt's key.
	ByCorrelationKey = "correlation-key"
	// ByRunListing: the run was the only new run of the workflow and ref
	// in the attempt's window.
	ByRunListing = "run-listing"
)

// NewAttempt records the intent to dispatch with correlation key key ("" for
// none). The attempt may be sent by this Dispatcher only.
func (d *Dispatcher) NewAttempt(key string) *Attempt {
	a := &Attempt{ID: RandomKey(), Key: key, IntentAt: time.Now()}
	d.intents.put(a.ID, intentRecorded)
	return a
}

// CanSend reports whether a may be sent: this process recorded it and has
// not sent it. An attempt this process does not know (resumed after a
// restart) may have been sent by the process that recorded it.
func (d *Dispatcher) CanSend(a *Attempt) bool {
	return !a.MaybeSent && a.Run == nil && d.intents.get(a.ID) == intentRecorded
}

// RandomKey returns a fresh correlation key: 20 hex digits behind a prefix,
// so it is recognisable in a run title and no key is part of another.
func RandomKey() string {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return "kgha-" + hex.EncodeToString(b[:])
}

// intent states kept in memory.
const (
	intentRecorded = 1 + iota
	intentSending
	intentSent
)

// intentMemory remembers the attempts this process recorded, bounded in
// size and age: an attempt older than maxIntentAge is no longer sendable,
// which is the safe side.
type intentMemory struct {
	m bounded.Map[string, int]
}

const (
	maxIntents   = 10000
	maxIntentAge = time.Hour
)

func (m *intentMemory) put(id string, state int) { m.m.Put(id, state, maxIntents, maxIntentAge) }
func (m *intentMemory) get(id string) int        { v, _ := m.m.Get(id, maxIntentAge); return v }

// swap sets id to next if it is in state from.
func (m *intentMemory) swap(id string, from, next int) bool {
	return m.m.Update(id, maxIntentAge, func(v int) (int, bool) { return next, v == from })
}
