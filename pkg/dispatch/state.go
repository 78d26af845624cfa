package dispatch

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// StateVersion is the version of State's saved form. A saved state of
// another version is not guessed at: Decode refuses it.
const StateVersion = 1

// Phase is where a dispatch is in its life. The only way forward is
//
//	recorded → sending → sent → found
//	recorded → sent → found            (GitHub accepted; the run is looked for)
//	recorded → found                   (GitHub named the run, or the key found an earlier one)
//	any      → failed
//
// and a phase never goes back: once a dispatch may have reached GitHub
// (sending, sent), it is never sent again.
type Phase string

const (
	// PhaseRecorded: the intent is recorded; nothing has been sent by the
	// process that recorded it.
	PhaseRecorded Phase = "recorded"
	// PhaseSending: the request may have reached GitHub, but whether GitHub
	// acted is not known (its answer was lost, or the process that sent it
	// is gone). The run is looked for; Uncertainty says why.
	PhaseSending Phase = "sending"
	// PhaseSent: GitHub accepted the dispatch without naming the run; the
	// run is looked for.
	PhaseSent Phase = "sent"
	// PhaseFound: the run is known (Run).
	PhaseFound Phase = "found"
	// PhaseFailed: the dispatch ended without a run; Failure says why and
	// what may exist.
	PhaseFailed Phase = "failed"
)

func (p Phase) valid() bool {
	switch p {
	case PhaseRecorded, PhaseSending, PhaseSent, PhaseFound, PhaseFailed:
		return true
	}
	return false
}

// Uncertainty is why a dispatch in PhaseSending may or may not have
// started a run.
type Uncertainty string

const (
	// LostAnswer: the request left, and its answer was lost (a 5xx, a
	// reset connection, a timeout).
	LostAnswer Uncertainty = "lost-answer"
	// Restarted: the dispatch was recorded by a process that is gone, which
	// may have sent it before it died.
	Restarted Uncertainty = "restarted"
)

// State is one dispatch from intent to run: plain, versioned data that a
// caller who may die between two calls (a Kargo controller) saves as it is
// and hands back. Advance moves it forward; nothing else changes it.
type State struct {
	Version int   `json:"version"`
	Phase   Phase `json:"phase"`
	// Attempt names the dispatch in this process's memory; only the
	// process that recorded it may send it.
	Attempt string `json:"attempt"`
	// Key is the correlation key put into Request.CorrelationInput, or "".
	Key string `json:"key,omitempty"`
	// KeyGiven is true when the caller chose the key (it may be reused on
	// purpose); false for keys this project made unique.
	KeyGiven bool `json:"keyGiven,omitempty"`
	// KeyCheckedAt is, on the server's clock, when the look-up for an
	// earlier run carrying Key found none: a run carrying it created
	// earlier than that would have been seen.
	KeyCheckedAt time.Time `json:"keyCheckedAt,omitzero"`
	// IntentAt is when the dispatch was recorded (local clock).
	IntentAt time.Time `json:"intentAt"`
	// SentAt is when the request started to leave (local clock); zero when
	// it has not, or when that is not known (after a restart).
	SentAt time.Time `json:"sentAt,omitzero"`
	// NotBefore is, on the server's clock, a time before GitHub received
	// the dispatch: a run created earlier is not this dispatch's.
	NotBefore time.Time `json:"notBefore,omitzero"`
	// ReceivedBy is, on the server's clock, a time by which GitHub had
	// received the dispatch (its answer's Date, plus the second Date
	// truncates): its run exists by ReceivedBy plus the settle.
	ReceivedBy time.Time `json:"receivedBy,omitzero"`
	// Named is the run GitHub named in its answer, for a dispatch whose
	// key the caller chose: it is taken once no second run carries the key.
	Named int64 `json:"named,omitzero"`
	// Uncertainty is set in PhaseSending.
	Uncertainty Uncertainty `json:"uncertainty,omitempty"`
	// SendFailures counts tries that provably sent nothing.
	SendFailures int `json:"sendFailures,omitzero"`
	// FindFailures counts the listings in a row that failed (each already
	// retried): the looks back off while GitHub fails.
	FindFailures int `json:"findFailures,omitzero"`
	// Run is the run, in PhaseFound.
	Run *Run `json:"run,omitempty"`
	// Failure is why the dispatch failed, in PhaseFailed.
	Failure string `json:"failure,omitempty"`
	// RunsPage is the workflow's runs page: where a person looks for a run
	// whose dispatch outcome is unknown.
	RunsPage string `json:"runsPage,omitempty"`
	// DispatchAPI is how the host took (or refused) the dispatch, once an
	// answer showed it: a step resumed elsewhere starts there instead of
	// probing newer ways again.
	DispatchAPI DispatchAPI `json:"dispatchAPI,omitempty"`
}

// Run is the run a dispatch created.
type Run struct {
	ID      int64  `json:"id"`
	URL     string `json:"url"`
	HTMLURL string `json:"htmlURL"`
	// Method is how the dispatch learned its run.
	Method Method `json:"method"`
	// HeadSHA and HeadBranch are the commit and branch the run builds,
	// when the listing that found it said (head.go); empty otherwise.
	HeadSHA    string `json:"headSHA,omitempty"`
	HeadBranch string `json:"headBranch,omitempty"`
}

// Method is how a dispatch learned its run.
type Method string

const (
	// ByRunDetails: GitHub named the run in its answer to the dispatch.
	ByRunDetails Method = "run-details"
	// ByCorrelationKey: the run's title carried the dispatch's key.
	ByCorrelationKey Method = "correlation-key"
	// ByEarlierDispatch: before sending, a run carrying the key was found:
	// the same key is the same dispatch, so nothing was sent.
	ByEarlierDispatch Method = "earlier-dispatch"
	// ByRunListing: the run was the only new run of the workflow and ref
	// in the dispatch's window (see Attribute for what that assumes).
	ByRunListing Method = "run-listing"
)

// Start is when the dispatch was sent, or, when that is not known, when it
// was recorded: the time its timeout counts from and its messages name.
func (s *State) Start() time.Time {
	if s.SentAt.IsZero() {
		return s.IntentAt
	}
	return s.SentAt
}

// MaySend reports whether the state allows sending: nothing has gone out.
func (s *State) MaySend() bool { return s.Phase == PhaseRecorded }

// Done reports whether the dispatch has ended, with a run or without.
func (s *State) Done() bool { return s.Phase == PhaseFound || s.Phase == PhaseFailed }

// MayHaveSent reports whether GitHub may have received the dispatch.
func (s *State) MayHaveSent() bool {
	switch s.Phase {
	case PhaseSending, PhaseSent:
		return true
	case PhaseFound:
		return s.Run == nil || s.Run.Method != ByEarlierDispatch
	case PhaseFailed:
		return !s.SentAt.IsZero() || s.Uncertainty != ""
	}
	return false
}

// Encode is the state as JSON-typed values (a map of strings, numbers and
// booleans), the form Kargo keeps in a Promotion's step output.
func (s *State) Encode() map[string]any {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // plain data always marshals
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		panic(err)
	}
	return m
}

// StateError is a saved state that cannot be read. It is final: reading it
// as "no state" would record a fresh dispatch and send it again, while the
// unreadable one may have started a run.
type StateError struct {
	Err error
	// RunsPage is where to look, when the state named it.
	RunsPage string
}

func (e *StateError) Error() string {
	where := "the workflow's runs page"
	if e.RunsPage != "" {
		where = e.RunsPage
	}
	return fmt.Sprintf("the saved dispatch state cannot be read (%v), so whether a dispatch was sent is unknown; not dispatching again: check %s for a run of it, then start a new promotion", e.Err, where)
}

func (e *StateError) Unwrap() error { return e.Err }

// Decode reads a state saved with Encode (after a JSON round trip, as
// Kargo hands it back). Anything unreadable — an unknown version or phase,
// a missing attempt or intent time, an unknown field, the wrong types — is
// a *StateError, never a fresh start.
func Decode(v any) (*State, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, &StateError{Err: err}
	}
	page := pageOf(v)
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var s State
	if err := dec.Decode(&s); err != nil {
		return nil, &StateError{Err: err, RunsPage: page}
	}
	if err := s.check(); err != nil {
		return nil, &StateError{Err: err, RunsPage: page}
	}
	return &s, nil
}

// check enforces what every phase must hold.
func (s *State) check() error {
	switch {
	case s.Version != StateVersion:
		return fmt.Errorf("version %d, this build reads version %d", s.Version, StateVersion)
	case !s.Phase.valid():
		return fmt.Errorf("unknown phase %q", s.Phase)
	case s.Attempt == "":
		return errors.New("no attempt ID")
	case s.IntentAt.IsZero():
		return errors.New("no intent time")
	case s.Phase == PhaseFound && (s.Run == nil || s.Run.ID <= 0):
		return errors.New("phase found without a run")
	case s.Phase == PhaseSending && s.Uncertainty != LostAnswer && s.Uncertainty != Restarted:
		return fmt.Errorf("phase sending with uncertainty %q", s.Uncertainty)
	case s.Phase == PhaseFailed && s.Failure == "":
		return errors.New("phase failed without a reason")
	case !s.DispatchAPI.valid():
		return fmt.Errorf("unknown dispatch API %q", s.DispatchAPI)
	}
	return nil
}

// pageOf is the runs page named in a saved state, if it can be read at all.
func pageOf(v any) string {
	m, _ := v.(map[string]any)
	s, _ := m["runsPage"].(string)
	return s
}

// RandomKey returns a fresh correlation key: 20 hex digits behind a prefix,
// recognisable in a run title.
func RandomKey() string {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return KeyPrefix + hex.EncodeToString(b[:])
}

// KeyFromSeed derives a key from text that names one dispatch (a project,
// a promotion and a step's alias): the same text gives the same key, which
// is the same dispatch.
func KeyFromSeed(seed string) string {
	h := sha256.Sum256([]byte(seed))
	return KeyPrefix + hex.EncodeToString(h[:10])
}

// KeyPrefix starts every key this project makes.
const KeyPrefix = "kgha-"
