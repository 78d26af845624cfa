package dispatch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v90/github"

	"github.com/kargo-gha/kargo-gha/internal/bounded"
	"github.com/kargo-gha/kargo-gha/pkg/failure"
	"github.com/kargo-gha/kargo-gha/pkg/ghclient"
)

const (
	// perPage is GitHub's maximum page size for run listings.
	perPage = 100
	// maxListPages bounds one listing: 1,000 runs of one workflow and ref
	// in one window is far beyond GitHub's dispatch rate limits.
	maxListPages = 10
	// minListGap lets concurrent attempts on one workflow and ref share a
	// listing instead of each sending its own.
	minListGap = 250 * time.Millisecond
	// maxClaims and claimAge bound the memory of runs taken by this
	// process's attempts (older runs fall out of every window anyway).
	maxClaims = 100000
	claimAge  = time.Hour
	// pendingAge is how long an attempt whose run was never found keeps
	// its place in line, so that its late run is not handed to the next.
	pendingAge = time.Hour
	// maxCachedRuns bounds the runs one tracker remembers from listings.
	maxCachedRuns = 5000
	// listingWindow: attempts older than this no longer set where listings
	// start (they have timed out; their windows stay in the cache).
	listingWindow = 2 * time.Minute
)

// DefaultHoldWindow is how long a dispatch whose answer was lost keeps the
// other dispatches of its workflow and ref in this process from being sent:
// until its run shows up (or this passes), a new run could be either's.
// Runs appear within seconds.
const DefaultHoldWindow = 10 * time.Second

// ErrHeld is why Send did not send: an earlier dispatch of the same
// workflow and ref in this process lost its answer and its run has not
// been found yet. Nothing was sent; try again shortly.
var ErrHeld = errors.New("an earlier dispatch of the same workflow and ref in this process lost its answer, and its run has not been found yet; nothing was sent")

// AmbiguousError is Find's refusal to guess: several runs could be the
// attempt's, and nothing tells them apart. It is final.
type AmbiguousError struct {
	Workflow   string
	Candidates []*Result
	RunsPage   string
	Reason     string
}

// Why an attempt is ambiguous, beyond several runs in its window.
const (
	reasonLost   = "lost"
	reasonShared = "shared"
)

func (e *AmbiguousError) Error() string {
	ids := make([]string, len(e.Candidates))
	for i, c := range e.Candidates {
		ids[i] = fmt.Sprintf("%d (%s)", c.RunID, c.HTMLURL)
	}
	runs := "runs " + strings.Join(ids, ", ") + " appeared in the same window"
	if len(ids) == 1 {
		runs = "run " + ids[0] + " appeared in its window"
	}
	why := "another dispatcher of the same workflow and ref may have created them"
	switch e.Reason {
	case reasonLost:
		why = "the dispatch's answer was lost, so GitHub may not have acted, and another dispatcher of the same workflow and ref may have created it"
	case reasonShared:
		why = "another dispatch of the same workflow and ref, resumed after a restart, could have created it too"
	}
	return fmt.Sprintf("cannot tell which run this dispatch of %s created: %s, and %s; not guessing. "+
		"Check %s before dispatching again, and set correlationInput (see README) to make attribution exact",
		e.Workflow, runs, why, e.RunsPage)
}

// Find looks once for the run of a sent attempt (one listing, shared with
// concurrent attempts on the same workflow and ref). It returns the run,
// nil while it has not appeared (call again later), an *AmbiguousError
// when runs cannot be told apart, or the listing's error (classified).
func (d *Dispatcher) Find(ctx context.Context, c *ghclient.Client, req Request, a *Attempt) (*Result, error) {
	if a.Run != nil {
		return a.Run, nil
	}
	t := d.tracker(c, req)
	t.register(a, resumed) // a no-op for an attempt this process sent
	if id, ok := t.claimedBy(a.ID); ok {
		a.Run = t.result(c, id)
		return a.Run, nil
	}
	host := d.host(c.Repo.APIBaseURL)
	if a.Key == "" {
		// Runs another user started are never this attempt's: filter by
		// the token's user where that is cheap to know. Asking is this
		// call's one request; the listing is the next call's.
		known := c.LoginKnown()
		t.setLogin(a.ID, c.Login(ctx))
		if !known {
			return nil, nil
		}
	}
	if err := t.refresh(ctx, c, host, a); err != nil {
		return nil, err
	}
	res, err := t.assign(c, host, req, a, d.settle())
	if res != nil {
		a.Run = res
	}
	return res, err
}

// tracker follows the runs of one workflow and ref for this process.
type tracker struct {
	workflow string
	branch   string

	// claimed maps run IDs to the attempt that took them.
	claimed bounded.Map[int64, string]
	// post lets one dispatch of this workflow and ref go out at a time, so
	// that this process's attempts are in line in the order GitHub accepted
	// them (a one-slot semaphore: a waiter can give up when its context
	// ends).
	post chan struct{}

	mu       sync.Mutex
	held     map[string]time.Time
	pending  map[string]*pendingAttempt
	seq      int64
	runs     map[int64]*github.WorkflowRun
	seenAt   map[int64]time.Time // when a listing first showed the run
	listedAt time.Time
	listErr  error
	floor    time.Time
	etag     string // of the last first page, and its URL
	etagURL  string
}

type pendingAttempt struct {
	seq       int64
	key       string
	sent      time.Time // local clock; zero after a restart
	notBefore time.Time
	since     time.Time
	kind      attemptKind
	// bound closes the window of an attempt that may have no run: it takes
	// no run created once the next dispatch of this process reached GitHub.
	bound time.Time
	// login, when known, is the user whose token sent the dispatch: a run
	// another user triggered is not this attempt's.
	login string
}

// attemptKind is how sure an attempt is of having a run.
type attemptKind int

const (
	// accepted: GitHub accepted the dispatch, so it has a run.
	accepted attemptKind = iota
	// lost: the answer was lost; GitHub may not have acted.
	lost
	// resumed: recorded by a process that is gone, which may or may not
	// have sent it.
	resumed
)

func (p *pendingAttempt) window(id string) waiting {
	return waiting{id: id, notBefore: p.notBefore, sent: p.sent, bound: p.bound, login: p.login}
}

func (t *tracker) setLogin(id, login string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.pending[id]; p != nil && login != "" {
		p.login = login
	}
}

func (d *Dispatcher) tracker(c *ghclient.Client, req Request) *tracker {
	key := c.Repo.APIBaseURL + "|" + strings.ToLower(c.Repo.FullName()) + "|" + req.WorkflowFile + "|" + req.branch()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.trackers == nil || len(d.trackers) >= maxTrackers {
		d.trackers = map[string]*tracker{}
	}
	t, ok := d.trackers[key]
	if !ok {
		t = &tracker{workflow: req.WorkflowFile, branch: req.branch(), pending: map[string]*pendingAttempt{}, runs: map[int64]*github.WorkflowRun{},
			post: make(chan struct{}, 1), held: map[string]time.Time{}, seenAt: map[int64]time.Time{}}
		d.trackers[key] = t
	}
	return t
}

// register puts a sent attempt in line. Attempts are ordered by when they
// were sent: GitHub creates runs in the order it accepts dispatches.
func (t *tracker) register(a *Attempt, kind attemptKind) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.pending[a.ID]
	if !ok {
		t.seq++
		p = &pendingAttempt{seq: t.seq, key: a.Key, sent: a.Start(), since: time.Now(), kind: kind}
		t.pending[a.ID] = p
	}
	if !a.NotBefore.IsZero() {
		p.notBefore = a.NotBefore
	}
	for id, q := range t.pending {
		if time.Since(q.since) > pendingAge {
			delete(t.pending, id)
		}
	}
}

// acquirePost takes the right to send a dispatch of this workflow and ref,
// unless a dispatch whose answer was lost holds it (ErrHeld). The caller
// must call release.
func (t *tracker) acquirePost(ctx context.Context) (release func(), err error) {
	select {
	case t.post <- struct{}{}:
	case <-ctx.Done():
		return nil, failure.Transient(fmt.Errorf("waiting to send the dispatch of %s: another dispatch of it is being sent: %w; nothing was sent", t.workflow, ctx.Err()))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, until := range t.held {
		if _, waiting := t.pending[id]; !waiting || time.Now().After(until) {
			delete(t.held, id)
		}
	}
	if len(t.held) > 0 {
		<-t.post
		return nil, failure.TransientUntil(ErrHeld, time.Now().Add(time.Second))
	}
	return func() { <-t.post }, nil
}

// bound closes the window of every uncertain attempt still open: a's
// dispatch has just been sent after them, and a run created from a's
// window on may be a's.
func (t *tracker) bound(a *Attempt, host *hostState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	at := a.NotBefore
	if at.IsZero() {
		at = host.now().Add(-time.Since(a.SentAt)).Add(-time.Second).Truncate(time.Second)
	}
	for id, p := range t.pending {
		if id != a.ID && p.kind != accepted && p.bound.IsZero() {
			p.bound = at
		}
	}
}

// hold keeps other dispatches of this workflow and ref from being sent
// until attempt id's run is found, or window passes.
func (t *tracker) hold(id string, window time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.held[id] = time.Now().Add(window)
}

func (t *tracker) claimedBy(attemptID string) (int64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, run := range t.runs {
		if owner, ok := t.claimed.Get(id, claimAge); ok && owner == attemptID {
			return run.GetID(), true
		}
	}
	return 0, false
}

// refresh lists the workflow's recent runs unless a listing shared with
// other attempts is fresh enough. t.mu is taken inside.
func (t *tracker) refresh(ctx context.Context, c *ghclient.Client, host *hostState, a *Attempt) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if time.Since(t.listedAt) < minListGap && !a.NotBefore.IsZero() && !a.NotBefore.Before(t.floor) {
		return t.listErr
	}
	floor := t.windowFloor(a)
	runs, resp, err := t.list(ctx, c, floor)
	t.listedAt, t.listErr = time.Now(), err
	if resp != nil {
		host.observe(resp.Response)
	}
	if err != nil {
		return err
	}
	for _, p := range t.pending {
		if p.notBefore.IsZero() {
			p.notBefore = notBeforeFromLater(p.sent, resp)
		}
	}
	if p := t.pending[a.ID]; p != nil && a.NotBefore.IsZero() {
		a.NotBefore = p.notBefore
	}
	t.floor = floor
	for _, run := range runs {
		if len(t.runs) >= maxCachedRuns {
			t.pruneRuns()
		}
		if _, ok := t.seenAt[run.GetID()]; !ok {
			t.seenAt[run.GetID()] = t.listedAt
		}
		t.runs[run.GetID()] = run
	}
	return nil
}

// windowFloor is where listings start: the earliest window among waiting
// attempts, or, for an attempt whose window is not known yet, a minute
// before it was recorded (the listing's own Date then fixes the window).
func (t *tracker) windowFloor(a *Attempt) time.Time {
	floor := a.NotBefore
	if floor.IsZero() {
		floor = a.IntentAt.Add(-time.Minute)
	}
	for _, p := range t.pending {
		// Attempts waiting longer than listingWindow (given up on, most
		// likely) do not hold every listing back.
		if !p.notBefore.IsZero() && p.notBefore.Before(floor) && time.Since(p.since) < listingWindow {
			floor = p.notBefore
		}
	}
	return floor.Truncate(time.Second)
}

// notBeforeFromLater bounds the window of a dispatch sent at sent (local
// clock) from a response received after it, or from the local clock when
// the response has no Date.
func notBeforeFromLater(sent time.Time, resp *github.Response) time.Time {
	if date, ok := dateOf(resp.Response); ok {
		return windowStart(sent, date)
	}
	return sent.Add(-time.Second).Truncate(time.Second)
}

// windowStart is, on the server's clock, a time before a dispatch sent at
// sent (local clock) reached GitHub, given a Date stamped by the server
// after that: the Date less the time since sending, in whole seconds as
// created_at has them.
func windowStart(sent, date time.Time) time.Time {
	return date.Add(-time.Since(sent)).Truncate(time.Second)
}

func (t *tracker) pruneRuns() {
	oldest := time.Now()
	for _, p := range t.pending {
		if !p.notBefore.IsZero() && p.notBefore.Before(oldest) {
			oldest = p.notBefore
		}
	}
	for id, run := range t.runs {
		if run.GetCreatedAt().Time.Before(oldest.Add(-time.Minute)) || len(t.runs) >= maxCachedRuns {
			delete(t.runs, id)
			delete(t.seenAt, id)
		}
	}
}

// list returns the workflow_dispatch runs of the workflow and branch
// created since floor that check out (see valid), or nil when nothing
// changed. The first page is a conditional request: while the listing is
// unchanged GitHub answers 304, which costs no rate limit, and the runs
// already cached stand.
//
// GitHub API docs: https://docs.github.com/rest/actions/workflow-runs#list-workflow-runs-for-a-workflow
func (t *tracker) list(ctx context.Context, c *ghclient.Client, floor time.Time) ([]*github.WorkflowRun, *github.Response, error) {
	var all []*github.WorkflowRun
	var first *github.Response
	for page := 1; page <= maxListPages; page++ {
		q := url.Values{}
		q.Set("event", "workflow_dispatch")
		q.Set("branch", t.branch)
		q.Set("created", ">="+floor.UTC().Format(time.RFC3339))
		q.Set("per_page", fmt.Sprint(perPage))
		q.Set("exclude_pull_requests", "true")
		if page > 1 {
			q.Set("page", fmt.Sprint(page))
		}
		u := fmt.Sprintf("repos/%s/%s/actions/workflows/%s/runs?%s",
			url.PathEscape(c.Repo.Owner), url.PathEscape(c.Repo.Name), url.PathEscape(t.workflow), q.Encode())
		req, err := c.NewRequest(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, nil, err
		}
		if page == 1 && t.etag != "" && t.etagURL == u {
			req.Header.Set("If-None-Match", t.etag)
		}
		var runs github.WorkflowRuns
		resp, err := c.Do(req, &runs)
		if first == nil {
			first = resp
		}
		if page == 1 && ghclient.StatusCode(err) == http.StatusNotModified {
			return nil, first, nil
		}
		if err != nil {
			return nil, first, ghclient.Classify(err, fmt.Sprintf("listing runs of workflow %s on %s in %s", t.workflow, t.branch, c.Repo.FullName()), ghclient.Hints{
				Forbidden: "the credentials need the actions:read permission",
				NotFound:  notFoundHint(c, t.workflow),
			})
		}
		if page == 1 {
			t.etag, t.etagURL = resp.Header.Get("ETag"), u
		}
		for _, run := range runs.WorkflowRuns {
			if valid(c, t, run) {
				all = append(all, run)
			}
		}
		if resp.NextPage == 0 || len(runs.WorkflowRuns) == 0 {
			break
		}
	}
	return all, first, nil
}

// valid checks a listed run against what was asked for: a server that
// ignores its filters must not hand over another repository's, workflow's,
// branch's or event's run.
func valid(c *ghclient.Client, t *tracker, run *github.WorkflowRun) bool {
	path := strings.SplitN(run.GetPath(), "@", 2)[0]
	return run.GetID() > 0 &&
		run.GetEvent() == "workflow_dispatch" &&
		run.GetHeadBranch() == t.branch &&
		(path == "" || path == ".github/workflows/"+t.workflow) &&
		(run.GetRepository() == nil || strings.EqualFold(run.GetRepository().GetFullName(), c.Repo.FullName())) &&
		!run.GetCreatedAt().Time.IsZero()
}

// assign decides a's run from the cached listing. With a key, the run
// whose title carries it. Without, runs are handed to this process's
// waiting attempts in the order they were sent, each the lowest-numbered
// new run created in its window; a run nobody here sent, in a's window
// within the settle time of a's run, makes a ambiguous.
func (t *tracker) assign(c *ghclient.Client, host *hostState, req Request, a *Attempt, settle time.Duration) (*Result, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if a.Key != "" {
		return t.assignByKey(c, req, a)
	}
	me, ok := t.pending[a.ID]
	if !ok {
		return nil, nil
	}
	var runs []*github.WorkflowRun
	for _, run := range t.runs {
		if _, taken := t.claimed.Get(run.GetID(), claimAge); !taken && titleKey(run.GetDisplayTitle()) == "" {
			runs = append(runs, run)
		}
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].GetID() < runs[j].GetID() })
	owner := t.inOrder(runs)
	w := me.window(a.ID)
	var mine *github.WorkflowRun
	if me.kind == accepted {
		for id, who := range owner {
			if who == a.ID {
				mine = t.runs[id]
			}
		}
	} else {
		// Answer lost, or resumed after a restart: the first new run in the
		// window that no accepted attempt of this process takes.
		for _, run := range runs {
			if owner[run.GetID()] == "" && t.couldBe(run, w) {
				mine = run
				break
			}
		}
	}
	if mine == nil {
		return nil, nil
	}
	// created_at has whole seconds: a run stamped S was created before S+1.
	horizon := created(mine).Add(time.Second + settle)
	if host.now().Before(horizon) {
		return nil, nil // a second run in the window may still show up
	}
	cands := []*Result{t.result(c, mine.GetID())}
	for _, run := range runs {
		if run != mine && owner[run.GetID()] == "" && t.couldBe(run, w) && created(run).Before(horizon) {
			cands = append(cands, t.result(c, run.GetID()))
		}
	}
	if me.kind == resumed && t.othersCouldOwn(a.ID, mine) {
		delete(t.pending, a.ID)
		return nil, failure.Final(&AmbiguousError{Workflow: req.WorkflowFile, Candidates: cands, RunsPage: RunsPage(c, req.WorkflowFile), Reason: reasonShared})
	}
	switch {
	case me.kind == lost:
		// GitHub may not have acted: a lone run in the window may be
		// another dispatcher's. Without a key, nothing tells.
		delete(t.pending, a.ID)
		delete(t.held, a.ID)
		return nil, failure.Final(&AmbiguousError{Workflow: req.WorkflowFile, Candidates: cands, RunsPage: RunsPage(c, req.WorkflowFile), Reason: reasonLost})
	case len(cands) > 1:
		delete(t.pending, a.ID)
		return nil, failure.Final(&AmbiguousError{Workflow: req.WorkflowFile, Candidates: cands, RunsPage: RunsPage(c, req.WorkflowFile)})
	}
	t.claimed.Put(mine.GetID(), a.ID, maxClaims, claimAge)
	delete(t.pending, a.ID)
	delete(t.held, a.ID)
	res := t.result(c, mine.GetID())
	res.Method = ByRunListing
	return res, nil
}

// inOrder hands runs to this process's accepted attempts in the order they
// were sent, each the lowest-numbered run in its window: GitHub creates
// runs in the order it accepts dispatches. It returns run ID → attempt ID.
func (t *tracker) inOrder(runs []*github.WorkflowRun) map[int64]string {
	type item struct {
		id  string
		seq int64
		w   waiting
	}
	var order []item
	for id, p := range t.pending {
		if p.key == "" && p.kind == accepted {
			order = append(order, item{id, p.seq, p.window(id)})
		}
	}
	sort.Slice(order, func(i, j int) bool { return order[i].seq < order[j].seq })
	owner := map[int64]string{}
	for _, it := range order {
		for _, run := range runs {
			if owner[run.GetID()] == "" && t.couldBe(run, it.w) {
				owner[run.GetID()] = it.id
				break
			}
		}
	}
	return owner
}

// othersCouldOwn reports whether run falls in the window of another
// attempt of this process that is not sure of its run either.
func (t *tracker) othersCouldOwn(id string, run *github.WorkflowRun) bool {
	for other, p := range t.pending {
		if other != id && p.key == "" && p.kind != accepted && t.couldBe(run, p.window(other)) {
			return true
		}
	}
	return false
}

type waiting struct {
	id        string
	notBefore time.Time
	sent      time.Time
	bound     time.Time // zero: open
	login     string    // "": any user
}

// couldBe reports whether run may be the run of w: created in w's window,
// and not already listed before w was sent.
func (t *tracker) couldBe(run *github.WorkflowRun, w waiting) bool {
	if created(run).Before(w.notBefore) || (!w.bound.IsZero() && !created(run).Before(w.bound)) {
		return false
	}
	if w.login != "" && !strings.EqualFold(triggeredBy(run), w.login) {
		return false
	}
	seen, ok := t.seenAt[run.GetID()]
	return !ok || w.sent.IsZero() || !seen.Before(w.sent)
}

// assignByKey finds the run whose title carries a's key. The key is unique
// to the attempt, so one match is the answer; two mean the key was sent
// twice, which this project never does, and are refused.
func (t *tracker) assignByKey(c *ghclient.Client, req Request, a *Attempt) (*Result, error) {
	var match []*github.WorkflowRun
	for _, run := range t.runs {
		if titleHasKey(run.GetDisplayTitle(), a.Key) {
			match = append(match, run)
		}
	}
	switch len(match) {
	case 0:
		return nil, nil
	case 1:
		t.claimed.Put(match[0].GetID(), a.ID, maxClaims, claimAge)
		delete(t.pending, a.ID)
		delete(t.held, a.ID)
		res := t.result(c, match[0].GetID())
		res.Method = ByCorrelationKey
		return res, nil
	}
	sort.Slice(match, func(i, j int) bool { return match[i].GetID() < match[j].GetID() })
	cands := make([]*Result, len(match))
	for i, run := range match {
		cands[i] = t.result(c, run.GetID())
	}
	delete(t.pending, a.ID)
	return nil, failure.Final(&AmbiguousError{Workflow: req.WorkflowFile, Candidates: cands, RunsPage: RunsPage(c, req.WorkflowFile)})
}

// result is the Result for run id, with URLs built from the repository
// rather than taken from the server.
func (t *tracker) result(c *ghclient.Client, id int64) *Result {
	api, web := runURLs(c, id)
	return &Result{RunID: id, RunURL: api, HTMLURL: web, Method: ByRunListing}
}

// titleHasKey reports whether title carries key as a whole word.
func titleHasKey(title, key string) bool {
	for i := 0; ; {
		j := strings.Index(title[i:], key)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(key)
		if (start == 0 || !wordByte(title[start-1])) && (end == len(title) || !wordByte(title[end])) {
			return true
		}
		i = start + 1
	}
}

// titleKey is the generated correlation key in a run title, or "": a run
// that carries a key belongs to a dispatch that set one, never to an
// attempt without.
func titleKey(title string) string { return generatedKey.FindString(title) }

var generatedKey = regexp.MustCompile(`kgha-[0-9a-f]{20}`)

func wordByte(b byte) bool {
	return b == '-' || b == '_' || b >= '0' && b <= '9' || b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z'
}

func created(run *github.WorkflowRun) time.Time { return run.GetCreatedAt().Time }

// triggeredBy is the login whose token started the run.
func triggeredBy(run *github.WorkflowRun) string {
	if a := run.GetTriggeringActor(); a != nil {
		return a.GetLogin()
	}
	return run.GetActor().GetLogin()
}
