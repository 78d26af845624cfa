package dispatch

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Attribution decides which listed run, if any, is a dispatch's. It is a
// pure function of what was listed, what the dispatch knows of itself and
// the server's time, so that every rule is a row of a table test.
//
// The rules, most exact first:
//
//   - A correlation key matches a run's title whole: the characters on
//     either side of it cannot be key characters. The same key is the same
//     dispatch, so one match is the answer and two are refused; a match
//     created before the key was checked means it was used before, and is
//     refused too. A key this project made unique is taken as soon as it
//     is seen; a key the caller chose is taken once a second use of it
//     would have shown (the settle).
//   - Without a key, the window opens when GitHub received the dispatch
//     (NotBefore, on the server's clock) and the run is taken only when it
//     is the one new run of the workflow and ref created in the settle
//     after that, judged once the server's clock has passed it. That
//     assumes GitHub creates a run within the settle of accepting its
//     dispatch and that no other dispatcher with the same credentials
//     dispatched the same workflow and ref in that time; anything else
//     seen is refused, naming every candidate.
//   - A dispatch that may not have reached GitHub (its answer was lost, or
//     its process restarted) cannot tell a run of its own from another
//     dispatcher's without a key: it refuses any candidate.
//   - A server whose clock cannot be read (no Date) or disagrees with its
//     own created_at gets no listing attribution at all.

// ListedRun is a run as attribution sees it.
type ListedRun struct {
	ID      int64
	Created time.Time // created_at, whole seconds, server clock
	Title   string    // display_title
	Actor   string    // triggering actor's login
	// HeadSHA and HeadBranch are the commit and branch the run builds
	// (head.go): not for attribution, for the dispatch's output.
	HeadSHA, HeadBranch string
}

// Listing is one look at the workflow's runs.
type Listing struct {
	Runs []ListedRun
	// ServerNow is the listing's Date: runs created before it are in it.
	// Zero when the server sent no Date.
	ServerNow time.Time
}

// Seeker is a dispatch looking for its run.
type Seeker struct {
	Key      string
	KeyGiven bool
	// KeyCheckedAt: see State.
	KeyCheckedAt time.Time
	// NotBefore: see State. Zero when unknown.
	NotBefore time.Time
	// ReceivedBy: see State. Zero when unknown: NotBefore plus a second.
	ReceivedBy time.Time
	// Uncertain is true when GitHub may not have acted on the dispatch.
	Uncertain bool
	// Login, when known, is the user whose token sent the dispatch.
	Login string
	// Settle is how long after NotBefore the dispatch's run is assumed to
	// exist.
	Settle time.Duration
	// Named is the run GitHub named for a dispatch with a key the caller
	// chose: it is its run unless another run carries the key too.
	Named int64
}

// Verdict is attribution's answer.
type Verdict struct {
	// Run is the seeker's run; zero while there is none to take.
	Run int64
	// Method is how Run was attributed.
	Method Method
	// Refused is set when the seeker must not take any run: Candidates
	// names every run that could be its, and Reason says why none is taken.
	Refused    bool
	Candidates []int64
	Reason     Reason
}

// Reason is why attribution refused.
type Reason string

const (
	// ReasonSeveral: more than one run could be the dispatch's.
	ReasonSeveral Reason = "several"
	// ReasonKeyReused: runs carrying the key existed before this dispatch
	// or several carry it: the key was used more than once.
	ReasonKeyReused Reason = "key-reused"
	// ReasonUncertain: the dispatch may not have reached GitHub, so a run
	// in its window may be another dispatcher's.
	ReasonUncertain Reason = "uncertain"
	// ReasonLate: the only run appeared later than the settle assumes.
	ReasonLate Reason = "late"
	// ReasonClock: the server's clock cannot be trusted for a window.
	ReasonClock Reason = "clock"
)

// clockTolerance is how far a run's created_at may run ahead of the Date
// of the listing that shows it before the server's clock is not believed,
// and how far behind a dispatch's window a run is still looked at.
const clockTolerance = 2 * time.Second

// earlyTolerance: a run carrying a key this project made, created this long
// before the key was checked, is a replay of an old run, not this dispatch.
const earlyTolerance = time.Minute

// readLag is how long after a run's creation a listing may still miss it
// (GitHub's replicas): decisions that rest on "no other run" wait for it.
const readLag = 2 * time.Second

// wholeSecond: created_at has whole seconds, so a run stamped S was
// created before S+1s.
const wholeSecond = time.Second

// Attribute decides the seeker's run from a listing. claimed reports runs
// already taken by other dispatches of this process.
func Attribute(s Seeker, l Listing, claimed func(id int64) bool) Verdict {
	l.Runs = distinct(l.Runs)
	if s.Key != "" {
		return byKey(s, l)
	}
	return byWindow(s, l, claimed)
}

func byKey(s Seeker, l Listing) Verdict {
	var match, early []int64
	floor := s.KeyCheckedAt
	if floor.IsZero() {
		floor = s.NotBefore
	}
	// A run carrying the key from before it was checked is an earlier use
	// of it. A key this project made can only be "used before" by a replay,
	// so only a run from well before counts; a key the caller chose may
	// really have been, so any run a clock tolerance before does.
	tolerance := earlyTolerance
	if s.KeyGiven {
		tolerance = clockTolerance
	}
	for _, r := range l.Runs {
		if !TitleHasKey(r.Title, s.Key) {
			continue
		}
		match = append(match, r.ID)
		if !floor.IsZero() && r.Created.Add(wholeSecond+tolerance).Before(floor) {
			early = append(early, r.ID)
		}
	}
	slices.Sort(match)
	switch {
	case s.Named > 0 && len(match) > 0 && !slices.Contains(match, s.Named):
		return refuse(ReasonKeyReused, sortedWith(match, s.Named))
	case len(match) == 0 && s.Named == 0:
		return Verdict{}
	case len(match) > 1 || len(early) > 0:
		return refuse(ReasonKeyReused, match)
	case !s.KeyGiven:
		return Verdict{Run: match[0], Method: ByCorrelationKey}
	case s.Uncertain && s.Named == 0:
		// A key the caller chose, and this dispatch may not have reached
		// GitHub: the one run carrying it may be another invocation's.
		return refuse(ReasonUncertain, match)
	}
	// A key the caller chose may be in use by another dispatcher at the
	// same time: take it once a second run carrying it would have shown.
	if s.NotBefore.IsZero() || l.ServerNow.Before(s.horizon().Add(readLag)) {
		return Verdict{}
	}
	if len(match) == 0 {
		// GitHub named the run, and its title does not carry the key (the
		// run-name does not echo it): nothing tells of another use.
		return Verdict{Run: s.Named, Method: ByRunDetails}
	}
	return Verdict{Run: match[0], Method: ByCorrelationKey}
}

func sortedWith(ids []int64, id int64) []int64 {
	out := append(slices.Clone(ids), id)
	slices.Sort(out)
	return out
}

func byWindow(s Seeker, l Listing, claimed func(int64) bool) Verdict {
	if l.ServerNow.IsZero() || skewed(l) {
		ids := make([]int64, 0, len(l.Runs))
		for _, r := range l.Runs {
			if !claimed(r.ID) && r.Created.Add(wholeSecond).After(s.NotBefore) {
				ids = append(ids, r.ID)
			}
		}
		return refuse(ReasonClock, ids)
	}
	if s.NotBefore.IsZero() {
		return Verdict{}
	}
	horizon := s.horizon()
	settled := !l.ServerNow.Before(horizon.Add(readLag))
	if !settled && !s.Uncertain {
		return Verdict{} // a second run may still show up
	}
	var inWindow, late []int64
	for _, r := range l.Runs {
		switch {
		case claimed(r.ID), r.Created.Before(s.NotBefore.Add(-clockTolerance)), titleKey(r.Title) != "":
		case s.Login != "" && !strings.EqualFold(r.Actor, s.Login):
		case !r.Created.After(horizon):
			inWindow = append(inWindow, r.ID)
		default:
			late = append(late, r.ID)
		}
	}
	slices.Sort(inWindow)
	slices.Sort(late)
	all := append(slices.Clone(inWindow), late...)
	switch {
	case len(all) == 0:
		return Verdict{}
	case s.Uncertain:
		// Nothing would make a run its own: refuse as soon as one shows.
		return refuse(ReasonUncertain, all)
	case len(inWindow) > 1:
		return refuse(ReasonSeveral, all)
	case len(inWindow) == 0:
		return refuse(ReasonLate, late)
	}
	return Verdict{Run: inWindow[0], Method: ByRunListing}
}

// horizon is, on the server's clock, when the dispatch's run exists at the
// latest, as the settle assumes: a run stamped later is not taken.
func (s Seeker) horizon() time.Time {
	received := s.ReceivedBy
	if received.IsZero() {
		received = s.NotBefore.Add(wholeSecond)
	}
	return received.Add(s.Settle)
}

// skewed reports a listing whose Date runs behind its own runs' created_at.
func skewed(l Listing) bool {
	for _, r := range l.Runs {
		if r.Created.After(l.ServerNow.Add(clockTolerance)) {
			return true
		}
	}
	return false
}

func refuse(why Reason, ids []int64) Verdict {
	return Verdict{Refused: true, Candidates: ids, Reason: why}
}

// PriorRun is the look-up before a keyed dispatch is sent: the same key is
// the same dispatch, so a run that already carries it is the answer
// (nothing is sent), and two are refused.
func PriorRun(key string, runs []ListedRun) Verdict {
	var match []int64
	for _, r := range distinct(runs) {
		if TitleHasKey(r.Title, key) {
			match = append(match, r.ID)
		}
	}
	slices.Sort(match)
	switch len(match) {
	case 0:
		return Verdict{}
	case 1:
		return Verdict{Run: match[0], Method: ByEarlierDispatch}
	}
	return refuse(ReasonKeyReused, match)
}

// TitleHasKey reports whether title carries key whole: neither character
// beside it is a key character, so "deploy-v1.2" is not in
// "deploy-v1.2.3" nor in "hotfix.deploy-v1.2".
func TitleHasKey(title, key string) bool {
	if key == "" {
		return false
	}
	for i := 0; ; {
		j := strings.Index(title[i:], key)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(key)
		if (start == 0 || !keyByte(title[start-1])) && (end == len(title) || !keyByte(title[end])) {
			return true
		}
		i = start + 1
	}
}

// keyByte reports a character that may be part of a key.
func keyByte(b byte) bool {
	return b == '-' || b == '_' || b == '.' || b >= '0' && b <= '9' || b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z'
}

// ValidKey checks a caller's correlation key: 8 to 64 key characters,
// starting with a letter or digit, so that it is long enough to be unique
// in a run title and matched whole there.
func ValidKey(key string) error {
	if !validKey.MatchString(key) {
		return fmt.Errorf("%q must be 8 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", key)
	}
	return nil
}

var validKey = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{7,63}$`)

// titleKey is a key this project made, found in a run title, or "": such a
// run belongs to a keyed dispatch, never to one without a key.
func titleKey(title string) string { return generatedKey.FindString(title) }

var generatedKey = regexp.MustCompile(KeyPrefix + `[0-9a-f]{20}`)

// distinct is runs with each run once. A listing read in pages lists a run
// twice when new runs push it onto the next page between two reads (seen
// in the benchmark: 1,000 dispatches of one workflow at once); one run
// listed twice is one candidate, never two.
func distinct(runs []ListedRun) []ListedRun {
	seen := make(map[int64]bool, len(runs))
	out := runs[:0:0]
	for _, r := range runs {
		if !seen[r.ID] {
			seen[r.ID] = true
			out = append(out, r)
		}
	}
	return out
}
