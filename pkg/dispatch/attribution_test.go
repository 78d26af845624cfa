package dispatch

import (
	"slices"
	"testing"
	"time"
)

// t0 is when GitHub received the dispatch (NotBefore), on the server's clock.
var t0 = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

func run(id int64, createdSec float64, title, actor string) ListedRun {
	return ListedRun{ID: id, Created: at(createdSec).Truncate(time.Second), Title: title, Actor: actor}
}

// decided is the server time at which a settle of 10 s has passed with
// the read lag: a lone run in the window is taken then, not before.
const decided = 13.0

// The attribution rules, one row each, including every case in which an
// earlier version printed another dispatcher's run.
func TestAttribute(t *testing.T) {
	none := func(int64) bool { return false }
	const key = "kgha-0123456789abcdef0123"
	cases := []struct {
		name    string
		seeker  Seeker
		runs    []ListedRun
		now     float64 // listing's Date, seconds after t0; -1: no Date
		claimed []int64
		want    Verdict
	}{
		// Without a key.
		{name: "lone run, settle not yet passed: wait", runs: []ListedRun{run(1, 1, "Deploy", "me")}, now: 5, want: Verdict{}},
		{name: "lone run after the settle: taken", runs: []ListedRun{run(1, 1, "Deploy", "me")}, now: decided, want: Verdict{Run: 1, Method: ByRunListing}},
		{name: "another's run 1.6 s after ours, ours slow (7 s): both seen, refused",
			runs: []ListedRun{run(7, 1.6, "Deploy", "me"), run(8, 7, "Deploy", "me")}, now: decided,
			want: Verdict{Refused: true, Candidates: []int64{7, 8}, Reason: ReasonSeveral}},
		{name: "another's run 2.9 s after ours, ours at 9 s: refused",
			runs: []ListedRun{run(7, 2.9, "Deploy", "me"), run(8, 9, "Deploy", "me")}, now: decided,
			want: Verdict{Refused: true, Candidates: []int64{7, 8}, Reason: ReasonSeveral}},
		{name: "same user's run 1 s after ours: refused",
			runs: []ListedRun{run(3, 0, "Deploy", "me"), run(4, 1, "Deploy", "me")}, now: decided,
			want: Verdict{Refused: true, Candidates: []int64{3, 4}, Reason: ReasonSeveral}},
		{name: "a run created well before the window is not a candidate",
			runs: []ListedRun{run(3, -3.5, "Deploy", "me"), run(4, 6, "Deploy", "me")}, now: decided,
			want: Verdict{Run: 4, Method: ByRunListing}},
		{name: "a run 0.5 s before the window may be ours on a clock that runs ahead: refused",
			runs: []ListedRun{run(3, -0.5, "Deploy", "me"), run(4, 6, "Deploy", "me")}, now: decided,
			want: Verdict{Refused: true, Candidates: []int64{3, 4}, Reason: ReasonSeveral}},
		{name: "a slow answer: the settle counts from when GitHub had the dispatch at the latest", seeker: Seeker{ReceivedBy: at(3)},
			runs: []ListedRun{run(4, 12.5, "Deploy", "me")}, now: 14, want: Verdict{}},
		{name: "a slow answer: its run, within the settle of the answer's Date, is taken", seeker: Seeker{ReceivedBy: at(3)},
			runs: []ListedRun{run(4, 12.5, "Deploy", "me")}, now: 15, want: Verdict{Run: 4, Method: ByRunListing}},
		{name: "only a run later than the settle: refused as late",
			runs: []ListedRun{run(5, 12, "Deploy", "me")}, now: 14,
			want: Verdict{Refused: true, Candidates: []int64{5}, Reason: ReasonLate}},
		{name: "another user's run is not a candidate", seeker: Seeker{Login: "me"},
			runs: []ListedRun{run(3, 1, "Deploy", "someone-else"), run(4, 2, "Deploy", "ME")}, now: decided,
			want: Verdict{Run: 4, Method: ByRunListing}},
		{name: "a run taken by another dispatch of this process is not a candidate", claimed: []int64{3},
			runs: []ListedRun{run(3, 1, "Deploy", "me"), run(4, 2, "Deploy", "me")}, now: decided,
			want: Verdict{Run: 4, Method: ByRunListing}},
		{name: "a run carrying a generated key is a keyed dispatch's",
			runs: []ListedRun{run(3, 1, "Deploy "+key, "me"), run(4, 2, "Deploy", "me")}, now: decided,
			want: Verdict{Run: 4, Method: ByRunListing}},
		{name: "answer lost: a lone run is refused", seeker: Seeker{Uncertain: true},
			runs: []ListedRun{run(1, 1, "Deploy", "me")}, now: decided,
			want: Verdict{Refused: true, Candidates: []int64{1}, Reason: ReasonUncertain}},
		{name: "answer lost: refused as soon as a run shows, without waiting for the settle", seeker: Seeker{Uncertain: true},
			runs: []ListedRun{run(1, 1, "Deploy", "me")}, now: 2,
			want: Verdict{Refused: true, Candidates: []int64{1}, Reason: ReasonUncertain}},
		{name: "restarted before or after sending: a lone run is refused", seeker: Seeker{Uncertain: true},
			runs: []ListedRun{run(1, 8, "Deploy", "me"), run(2, 11, "Deploy", "me")}, now: 30,
			want: Verdict{Refused: true, Candidates: []int64{1, 2}, Reason: ReasonUncertain}},
		{name: "no Date: no listing attribution", runs: []ListedRun{run(1, 1, "Deploy", "me")}, now: -1,
			want: Verdict{Refused: true, Candidates: []int64{1}, Reason: ReasonClock}},
		{name: "Date 2 min behind created_at: refused", runs: []ListedRun{run(1, 121, "Deploy", "me")}, now: decided,
			want: Verdict{Refused: true, Candidates: []int64{1}, Reason: ReasonClock}},
		{name: "nothing yet: wait", now: 40, want: Verdict{}},

		// With a key this project made unique.
		{name: "key: taken at once", seeker: Seeker{Key: key, KeyCheckedAt: at(-1)},
			runs: []ListedRun{run(9, 1, "Deploy "+key, "me")}, now: 1.5, want: Verdict{Run: 9, Method: ByCorrelationKey}},
		{name: "key: part of a longer word is no match", seeker: Seeker{Key: key},
			runs: []ListedRun{run(9, 1, "Deploy "+key+"0", "me"), run(10, 1, "Deploy x"+key, "me")}, now: 5, want: Verdict{}},
		{name: "key: two runs carry it: refused", seeker: Seeker{Key: key},
			runs: []ListedRun{run(9, 1, "Deploy "+key, "me"), run(10, 2, "Deploy ("+key+")", "me")}, now: 5,
			want: Verdict{Refused: true, Candidates: []int64{9, 10}, Reason: ReasonKeyReused}},
		{name: "key: a 10-minute-old run with the key (filters ignored): refused", seeker: Seeker{Key: key, KeyCheckedAt: at(-1), NotBefore: t0},
			runs: []ListedRun{run(9, -600, "Deploy "+key, "me")}, now: 5,
			want: Verdict{Refused: true, Candidates: []int64{9}, Reason: ReasonKeyReused}},

		// With a key the caller chose.
		{name: "given key deploy-v1.2 is not in deploy-v1.2.3 nor hotfix.deploy-v1.2", seeker: Seeker{Key: "deploy-v1.2", KeyGiven: true, NotBefore: t0},
			runs: []ListedRun{run(9, 1, "Deploy deploy-v1.2.3", "x"), run(10, 1, "Deploy hotfix.deploy-v1.2", "x")}, now: 30, want: Verdict{}},
		{name: "given key: taken once a second use would show", seeker: Seeker{Key: "deploy-v1.2", KeyGiven: true, NotBefore: t0},
			runs: []ListedRun{run(9, 1, "Deploy deploy-v1.2", "x")}, now: decided, want: Verdict{Run: 9, Method: ByCorrelationKey}},
		{name: "given key: not before the settle", seeker: Seeker{Key: "deploy-v1.2", KeyGiven: true, NotBefore: t0},
			runs: []ListedRun{run(9, 1, "Deploy deploy-v1.2", "x")}, now: 3, want: Verdict{}},
		{name: "given key used twice in a row: the earlier run is before the check, refused", seeker: Seeker{Key: "deploy-v1.2", KeyGiven: true, KeyCheckedAt: at(-0.5), NotBefore: t0},
			runs: []ListedRun{run(9, -5, "Deploy deploy-v1.2", "x")}, now: 1,
			want: Verdict{Refused: true, Candidates: []int64{9}, Reason: ReasonKeyReused}},
		{name: "given key used twice in a row, the first run just before the check: both seen after the settle, refused", seeker: Seeker{Key: "deploy-v1.2", KeyGiven: true, KeyCheckedAt: at(-0.5), NotBefore: t0},
			runs: []ListedRun{run(9, -2, "Deploy deploy-v1.2", "x"), run(10, 2, "Deploy deploy-v1.2", "x")}, now: decided,
			want: Verdict{Refused: true, Candidates: []int64{9, 10}, Reason: ReasonKeyReused}},
		{name: "given key, answer lost: the one run carrying it may be another invocation's, refused", seeker: Seeker{Key: "deploy-v1.2", KeyGiven: true, NotBefore: t0, Uncertain: true},
			runs: []ListedRun{run(9, 2, "Deploy deploy-v1.2", "x")}, now: decided,
			want: Verdict{Refused: true, Candidates: []int64{9}, Reason: ReasonUncertain}},
		{name: "generated key, Date 30 s ahead of created_at: still its run", seeker: Seeker{Key: key, KeyCheckedAt: at(29)},
			runs: []ListedRun{run(9, 1, "Deploy "+key, "me")}, now: 31, want: Verdict{Run: 9, Method: ByCorrelationKey}},
		{name: "given key, run named by GitHub, another run carries the key: refused", seeker: Seeker{Key: "deploy-v1.2", KeyGiven: true, NotBefore: t0, Named: 9},
			runs: []ListedRun{run(9, 1, "Deploy deploy-v1.2", "x"), run(10, 1, "Deploy deploy-v1.2", "x")}, now: 2,
			want: Verdict{Refused: true, Candidates: []int64{9, 10}, Reason: ReasonKeyReused}},
		{name: "given key, run named by GitHub, only another run carries the key: refused", seeker: Seeker{Key: "deploy-v1.2", KeyGiven: true, NotBefore: t0, Named: 9},
			runs: []ListedRun{run(10, 1, "Deploy deploy-v1.2", "x")}, now: 2,
			want: Verdict{Refused: true, Candidates: []int64{9, 10}, Reason: ReasonKeyReused}},
		{name: "given key, run named by GitHub and alone with the key after the settle: taken", seeker: Seeker{Key: "deploy-v1.2", KeyGiven: true, NotBefore: t0, Named: 9},
			runs: []ListedRun{run(9, 1, "Deploy deploy-v1.2", "x")}, now: decided, want: Verdict{Run: 9, Method: ByCorrelationKey}},
		{name: "given key, run named by GitHub, title without the key: taken after the settle", seeker: Seeker{Key: "deploy-v1.2", KeyGiven: true, NotBefore: t0, Named: 9},
			runs: []ListedRun{run(9, 1, "Deploy", "x")}, now: decided, want: Verdict{Run: 9, Method: ByRunDetails}},
		{name: "a run listed twice (pages shifted while read) is one candidate: taken", seeker: Seeker{Key: key, NotBefore: t0},
			runs: []ListedRun{run(9, 1, "Deploy "+key, "x"), run(9, 1, "Deploy "+key, "x")}, now: 3, want: Verdict{Run: 9, Method: ByCorrelationKey}},
		{name: "without a key, a run listed twice is one candidate: taken after the settle",
			runs: []ListedRun{run(4, 2, "Deploy", "me"), run(4, 2, "Deploy", "me")}, now: decided, want: Verdict{Run: 4, Method: ByRunListing}},
		{name: "given key used by two dispatchers at once: both runs seen, refused", seeker: Seeker{Key: "deploy-v1.2", KeyGiven: true, NotBefore: t0},
			runs: []ListedRun{run(9, 1, "Deploy deploy-v1.2", "x"), run(10, 4, "Deploy deploy-v1.2", "x")}, now: decided,
			want: Verdict{Refused: true, Candidates: []int64{9, 10}, Reason: ReasonKeyReused}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.seeker
			if s.NotBefore.IsZero() && s.Key == "" {
				s.NotBefore = t0
			}
			s.Settle = DefaultSettle
			l := Listing{Runs: tc.runs}
			if tc.now >= 0 {
				l.ServerNow = at(tc.now)
			}
			claimed := none
			if tc.claimed != nil {
				claimed = func(id int64) bool { return slices.Contains(tc.claimed, id) }
			}
			got := Attribute(s, l, claimed)
			if got.Run != tc.want.Run || got.Method != tc.want.Method || got.Refused != tc.want.Refused ||
				got.Reason != tc.want.Reason || !slices.Equal(got.Candidates, tc.want.Candidates) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestPriorRun(t *testing.T) {
	cases := []struct {
		name string
		runs []ListedRun
		want Verdict
	}{
		{"no run carries the key: send", []ListedRun{run(1, -30, "Deploy other-key-1", "x")}, Verdict{}},
		{"one run carries it: that is the dispatch", []ListedRun{run(1, -30, "Deploy my-key-123", "x")}, Verdict{Run: 1, Method: ByEarlierDispatch}},
		{"two carry it: refused, naming both", []ListedRun{run(2, -30, "my-key-123", "x"), run(1, -90, "Deploy my-key-123 again", "x")},
			Verdict{Refused: true, Candidates: []int64{1, 2}, Reason: ReasonKeyReused}},
		{"a longer key is another key", []ListedRun{run(1, -30, "Deploy my-key-1234", "x")}, Verdict{}},
		{"one run listed twice is one run", []ListedRun{run(1, -30, "Deploy my-key-123", "x"), run(1, -30, "Deploy my-key-123", "x")}, Verdict{Run: 1, Method: ByEarlierDispatch}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := PriorRun("my-key-123", tc.runs)
			if got.Run != tc.want.Run || got.Refused != tc.want.Refused || got.Method != tc.want.Method || !slices.Equal(got.Candidates, tc.want.Candidates) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestTitleHasKeyWhole(t *testing.T) {
	for title, want := range map[string]bool{
		"deploy-v1.2":               true,
		"Deploy deploy-v1.2":        true,
		"Deploy (deploy-v1.2)":      true,
		"Deploy deploy-v1.2, prod":  true,
		"Deploy deploy-v1.2.3":      false,
		"Deploy hotfix.deploy-v1.2": false,
		"Deploy deploy-v1.2_b":      false,
		"Deploy xdeploy-v1.2":       false,
		"deploy-v1.2.3 deploy-v1.2": true,
		"":                          false,
	} {
		if got := TitleHasKey(title, "deploy-v1.2"); got != want {
			t.Errorf("TitleHasKey(%q) = %v, want %v", title, got, want)
		}
	}
}

func TestValidKey(t *testing.T) {
	for key, ok := range map[string]bool{"deploy-v1.2": true, "kgha-0123456789abcdef0123": true, "short": false, "-leading-dash": false,
		"has space in": false, "unicode-ключ-12": false, "a" + string(make([]byte, 70)): false} {
		if err := ValidKey(key); (err == nil) != ok {
			t.Errorf("ValidKey(%q) = %v", key, err)
		}
	}
}
