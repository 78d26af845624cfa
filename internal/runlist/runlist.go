// Package runlist keeps, per repository and workflow, one conditional
// listing of the workflow's most recent runs, shared by every part of a
// process that reads runs: waits read a run's status from it (pkg/wait),
// and searches for the run a dispatch created look for it there
// (pkg/dispatch). A controller with waits and searches on one workflow so
// pays one listing per interval, not one per kind of reader.
//
// The listing is the first page of the workflow's runs, unfiltered (any
// event, any branch): up to 100 runs, newest first, a 304 while none
// changed. Each reader says how old an answer it takes (a search wants one
// at most a quarter of a second old, a wait takes one five seconds old),
// and judges for itself whether the page serves it: a search only when the
// page reaches back before its window (Snapshot.Reaches), else it lists on
// its own with its filters.
package runlist

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v90/github"

	"github.com/kargo-gha/kargo-gha/internal/ghclient"
)

const (
	// PerPage is GitHub's largest page: the most runs one answer carries.
	PerPage = 100
	// maxWorkflows bounds the workflows followed per client; beyond it they
	// start afresh (one listing each is all that is lost).
	maxWorkflows = 1000
	// maxTitle: GitHub cuts run titles far shorter; a longer one is hostile.
	maxTitle = 1024
	// maxText bounds the other strings kept of a run (branch, path, login,
	// URL): a hostile server's long ones are cut, not kept 100 times.
	maxText = 2048
)

// Snapshot is one answer of a listing. Its runs are shared by every reader
// and must not be changed.
type Snapshot struct {
	// Runs are the page's runs that belong to the repository, newest first,
	// with only the fields readers use.
	Runs []Run
	// Whole: the page held every run of the workflow (fewer than PerPage,
	// no next page).
	Whole bool
	// Ordered: the page was newest first, as GitHub sends it; a page that
	// was not reaches nowhere.
	Ordered bool
	// ServerNow is the Date of the last answer (a 304 included): runs
	// created before it are in the page. Zero when the server sent none.
	ServerNow time.Time
	// ReceivedAt is when that answer came, on the reader's clock.
	ReceivedAt time.Time
	// NoETag: the answer came without an ETag, so it is never a 304.
	NoETag bool
}

// Reaches reports whether every run of the workflow created at or after
// floor (server clock) is in the page: the page holds all the workflow's
// runs, or its oldest run was created before floor. Only then may a search
// whose window starts at floor read "no other run" from it.
func (s Snapshot) Reaches(floor time.Time) bool {
	if s.Whole {
		return true
	}
	if !s.Ordered || len(s.Runs) == 0 {
		return false
	}
	return s.Runs[len(s.Runs)-1].Created.Before(floor)
}

// Run is the listed run id, if the page shows it, made afresh for the
// reader.
func (s Snapshot) Run(id int64) (*github.WorkflowRun, bool) {
	for _, r := range s.Runs {
		if r.ID == id {
			return r.WorkflowRun(), true
		}
	}
	return nil, false
}

// Run is a listed run as its readers use it (a wait: status, conclusion,
// attempt, URL, workflow; a search: created_at, event, branch, commit,
// title, actors, path): a few hundred bytes kept of each, whatever the
// server sent.
type Run struct {
	ID, WorkflowID                                                                               int64
	Attempt                                                                                      int
	Created                                                                                      time.Time
	Status, Conclusion, HTMLURL, Path, Event, HeadBranch, HeadSHA, Title, Actor, TriggeringActor string
	// Concluded: the conclusion was not null; Triggered: a triggering
	// actor was named.
	Concluded, Triggered bool
}

// WorkflowRun is r as go-github's type.
func (r Run) WorkflowRun() *github.WorkflowRun {
	w := &github.WorkflowRun{ID: &r.ID, WorkflowID: &r.WorkflowID, RunAttempt: &r.Attempt, Status: &r.Status, HTMLURL: &r.HTMLURL,
		Path: &r.Path, Event: &r.Event, HeadBranch: &r.HeadBranch, HeadSHA: &r.HeadSHA, DisplayTitle: &r.Title, Actor: &github.User{Login: &r.Actor}}
	if !r.Created.IsZero() {
		w.CreatedAt = &github.Timestamp{Time: r.Created}
	}
	if r.Concluded {
		w.Conclusion = &r.Conclusion
	}
	if r.Triggered {
		w.TriggeringActor = &github.User{Login: &r.TriggeringActor}
	}
	return w
}

// Listing is the shared listing of one workflow's recent runs.
type Listing struct {
	workflow string // file name, or ID

	mu       sync.Mutex
	snap     Snapshot
	have     bool // snap holds a page (not only an error)
	etag     string
	listedAt time.Time
	err      error
	// lists counts the requests sent, for tests of sharing.
	lists int
}

type registry struct {
	mu sync.Mutex
	m  map[string]*Listing
}

// For is the listing of workflow (a file name or an ID) in c's repository,
// shared by every reader with c's Pool, API host and identity.
func For(c *ghclient.Client, workflow string) *Listing {
	reg := c.Shared("runlist", func() any { return &registry{} }).(*registry)
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if reg.m == nil || len(reg.m) >= maxWorkflows {
		reg.m = map[string]*Listing{}
	}
	l, ok := reg.m[workflow]
	if !ok {
		l = &Listing{workflow: workflow}
		reg.m[workflow] = l
	}
	return l
}

// Workflow is the workflow the listing lists.
func (l *Listing) Workflow() string { return l.workflow }

// Last is the last answer, without asking: ok is false before any page.
func (l *Listing) Last() (Snapshot, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.snap, l.have
}

// Get returns the listing, asking again (conditionally) when the last
// answer is older than maxAge on now's clock. Readers wait for one
// another, so that one answer serves all of them; an error is shared like
// an answer, except the reader's own cancellation. The readers of one
// client must share one clock (a Runner gives its Dispatcher and Checker
// the same): ages and ReceivedAt are read on it; an answer stamped later
// than now is asked again.
func (l *Listing) Get(ctx context.Context, c *ghclient.Client, now time.Time, maxAge time.Duration) (Snapshot, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.listedAt.IsZero() && now.Sub(l.listedAt) < maxAge && now.Sub(l.listedAt) >= 0 {
		return l.snap, l.err
	}
	snap, etag, err := l.list(ctx, c, now)
	switch {
	case ghclient.StatusCode(err) == http.StatusNotModified && l.have:
		if !snap.ServerNow.IsZero() {
			l.snap.ServerNow = snap.ServerNow
		}
		l.snap.ReceivedAt = now
		l.listedAt, l.err = now, nil
	case err != nil:
		l.snap, l.have, l.etag = Snapshot{}, false, ""
		if ctx.Err() == nil {
			l.listedAt, l.err = now, err
		}
		return Snapshot{}, err
	default:
		l.snap, l.have, l.etag, l.listedAt, l.err = snap, true, etag, now, nil
	}
	return l.snap, nil
}

// Requests is how many listings were sent (tests check sharing with it).
func (l *Listing) Requests() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lists
}

// list reads the first page of the workflow's runs, conditionally.
//
// GitHub API docs: https://docs.github.com/rest/actions/workflow-runs#list-workflow-runs-for-a-workflow
func (l *Listing) list(ctx context.Context, c *ghclient.Client, now time.Time) (Snapshot, string, error) {
	u := fmt.Sprintf("repos/%s/%s/actions/workflows/%s/runs?per_page=%d&exclude_pull_requests=true",
		url.PathEscape(c.Repo.Owner), url.PathEscape(c.Repo.Name), url.PathEscape(l.workflow), PerPage)
	req, err := c.NewRequest(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Snapshot{}, "", err
	}
	if l.etag != "" && l.have {
		req.Header.Set("If-None-Match", l.etag)
	}
	l.lists++
	var body github.WorkflowRuns
	resp, err := c.Do(req, &body)
	snap := Snapshot{ReceivedAt: now, Ordered: true}
	if resp != nil {
		if t, perr := http.ParseTime(resp.Header.Get("Date")); perr == nil {
			snap.ServerNow = t
		}
	}
	if err != nil {
		return snap, "", err
	}
	snap.Whole = resp.NextPage == 0 && len(body.WorkflowRuns) < PerPage
	var prev time.Time
	for _, r := range body.WorkflowRuns {
		created := r.GetCreatedAt().Time
		if !prev.IsZero() && created.After(prev) {
			snap.Ordered = false
		}
		prev = created
		if r.GetID() > 0 && ours(c, r) {
			snap.Runs = append(snap.Runs, slim(c, r))
		}
	}
	etag := resp.Header.Get("ETag")
	snap.NoETag = etag == ""
	return snap, etag, nil
}

// ours: a server that ignores the path must not hand over another
// repository's run.
func ours(c *ghclient.Client, r *github.WorkflowRun) bool {
	repo := r.GetRepository()
	return repo == nil || strings.EqualFold(repo.GetFullName(), c.Repo.FullName())
}

// slim keeps what the readers use of a listed run. A web URL outside the
// repository's is replaced by the run's own.
func slim(c *ghclient.Client, r *github.WorkflowRun) Run {
	s := Run{ID: r.GetID(), WorkflowID: r.GetWorkflowID(), Attempt: r.GetRunAttempt(), Created: r.GetCreatedAt().Time,
		Status: cut(r.GetStatus(), maxText), Conclusion: cut(r.GetConclusion(), maxText), HTMLURL: cut(r.GetHTMLURL(), maxText),
		Path: cut(r.GetPath(), maxText), Event: cut(r.GetEvent(), maxText), HeadBranch: cut(r.GetHeadBranch(), maxText), HeadSHA: cut(r.GetHeadSHA(), maxText),
		Title: cut(r.GetDisplayTitle(), maxTitle), Actor: cut(r.GetActor().GetLogin(), maxText),
		Concluded: r.Conclusion != nil, Triggered: r.TriggeringActor != nil}
	if s.Triggered {
		s.TriggeringActor = cut(r.GetTriggeringActor().GetLogin(), maxText)
	}
	if s.HTMLURL != "" && !ghclient.UnderBase(s.HTMLURL, c.Repo.WebURL()) {
		s.HTMLURL = fmt.Sprintf("%s/actions/runs/%d", c.Repo.WebURL(), s.ID)
	}
	return s
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
