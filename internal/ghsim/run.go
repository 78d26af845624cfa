package ghsim

import (
	"fmt"
	"strings"
	"time"
)

type run struct {
	id        int64
	number    int
	workflow  *Workflow
	repo      *Repo
	ref       string
	inputs    map[string]any
	actor     string
	title     string
	createdAt time.Time // when it becomes visible
	queuedFor time.Duration
	runFor    time.Duration
	// headSHA is the commit its ref pointed at when it was dispatched.
	headSHA string
	// cancelledAt is when it was cancelled (cancel.go), cancels how often.
	cancelledAt time.Time
	cancels     int
	review      review // a reviewer's decision, for a Manual environment
}

// status is computed from the clock, so runs progress without goroutines.
func (r *run) status(now time.Time) (status, conclusion string, updated time.Time) {
	if r.cancelled(now) {
		return "completed", "cancelled", r.cancelledAt
	}
	started := r.createdAt.Add(r.queuedFor)
	var approval time.Duration
	if env := r.workflow.Environment; env != nil {
		approval = env.ApprovalFor
		if env.Manual {
			approval = r.review.waited(started, now)
		}
	}
	done := started.Add(approval).Add(r.runFor)
	if r.review.rejected {
		done = started.Add(approval)
	}
	switch {
	case now.Before(started):
		return "queued", "", r.createdAt
	case now.Before(started.Add(approval)):
		return "waiting", "", started
	case now.Before(done):
		return "in_progress", "", started
	case now.Before(done.Add(r.workflow.ConclusionLag)):
		return "completed", "", done
	}
	return "completed", r.conclusion(), done
}

// conclusion is what the run ends with once it has a conclusion.
func (r *run) conclusion() string {
	if r.review.rejected {
		return "failure"
	}
	if c := r.workflow.Conclusion; c != "" {
		return c
	}
	return "success"
}

func (r *run) visible(now time.Time) bool { return !now.Before(r.createdAt) }

// apiRoot is the API root as the client addressed it: https://HOST/ or
// https://HOST/api/v3/.
type apiRoot struct {
	api  string // ends without "/"
	web  string
	ghes bool
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func (r *run) json(root apiRoot, now time.Time) map[string]any {
	status, conclusion, updated := r.status(now)
	repo := r.repo
	full := repo.Owner + "/" + repo.Name
	runURL := fmt.Sprintf("%s/repos/%s/actions/runs/%d", root.api, full, r.id)
	var concl any
	if conclusion != "" {
		concl = conclusion
	}
	sha := r.headSHA
	user := userJSON(root, r.actor)
	return map[string]any{
		"id":                   r.id,
		"name":                 strings.TrimSuffix(strings.TrimSuffix(r.workflow.File, ".yml"), ".yaml"),
		"node_id":              fmt.Sprintf("WFR_kwLO%d", r.id),
		"head_branch":          r.ref,
		"head_sha":             sha,
		"path":                 ".github/workflows/" + r.workflow.File,
		"display_title":        r.title,
		"run_number":           r.number,
		"run_attempt":          1,
		"event":                "workflow_dispatch",
		"status":               status,
		"conclusion":           concl,
		"workflow_id":          r.workflow.ID,
		"check_suite_id":       r.id + 1,
		"check_suite_node_id":  fmt.Sprintf("CS_kwDO%d", r.id+1),
		"url":                  runURL,
		"html_url":             fmt.Sprintf("%s/%s/actions/runs/%d", root.web, full, r.id),
		"pull_requests":        []any{},
		"created_at":           ts(r.createdAt),
		"updated_at":           ts(updated),
		"run_started_at":       ts(r.createdAt),
		"actor":                user,
		"triggering_actor":     user,
		"jobs_url":             runURL + "/jobs",
		"logs_url":             runURL + "/logs",
		"check_suite_url":      fmt.Sprintf("%s/repos/%s/check-suites/%d", root.api, full, r.id+1),
		"artifacts_url":        runURL + "/artifacts",
		"cancel_url":           runURL + "/cancel",
		"rerun_url":            runURL + "/rerun",
		"previous_attempt_url": nil,
		"workflow_url":         fmt.Sprintf("%s/repos/%s/actions/workflows/%d", root.api, full, r.workflow.ID),
		"head_commit": map[string]any{
			"id": sha, "tree_id": sha, "message": "simulated commit", "timestamp": ts(r.createdAt),
			"author":    map[string]any{"name": "Octo Cat", "email": "octocat@example.com"},
			"committer": map[string]any{"name": "GitHub", "email": "noreply@github.com"},
		},
		"repository":      repoJSON(root, repo),
		"head_repository": repoJSON(root, repo),
	}
}

func userJSON(root apiRoot, login string) map[string]any {
	u := root.api + "/users/" + login
	return map[string]any{
		"login": login, "id": 1000 + len(login), "node_id": "U_" + login, "type": "User", "site_admin": false,
		"avatar_url": root.web + "/avatars/" + login, "gravatar_id": "", "url": u, "html_url": root.web + "/" + login,
		"followers_url": u + "/followers", "following_url": u + "/following{/other_user}", "gists_url": u + "/gists{/gist_id}",
		"starred_url": u + "/starred{/owner}{/repo}", "subscriptions_url": u + "/subscriptions", "organizations_url": u + "/orgs",
		"repos_url": u + "/repos", "events_url": u + "/events{/privacy}", "received_events_url": u + "/received_events",
	}
}

func repoJSON(root apiRoot, r *Repo) map[string]any {
	full := r.Owner + "/" + r.Name
	u := root.api + "/repos/" + full
	m := map[string]any{
		"id": r.ID, "node_id": fmt.Sprintf("R_kgDO%d", r.ID), "name": r.Name, "full_name": full, "private": false,
		"owner": userJSON(root, r.Owner), "html_url": root.web + "/" + full, "description": nil, "fork": false, "url": u,
	}
	for name, suffix := range map[string]string{
		"archive_url": "/{archive_format}{/ref}", "assignees_url": "/assignees{/user}", "blobs_url": "/git/blobs{/sha}",
		"branches_url": "/branches{/branch}", "collaborators_url": "/collaborators{/collaborator}", "comments_url": "/comments{/number}",
		"commits_url": "/commits{/sha}", "compare_url": "/compare/{base}...{head}", "contents_url": "/contents/{+path}",
		"contributors_url": "/contributors", "deployments_url": "/deployments", "downloads_url": "/downloads", "events_url": "/events",
		"forks_url": "/forks", "git_commits_url": "/git/commits{/sha}", "git_refs_url": "/git/refs{/sha}", "git_tags_url": "/git/tags{/sha}",
		"hooks_url": "/hooks", "issue_comment_url": "/issues/comments{/number}", "issue_events_url": "/issues/events{/number}",
		"issues_url": "/issues{/number}", "keys_url": "/keys{/key_id}", "labels_url": "/labels{/name}", "languages_url": "/languages",
		"merges_url": "/merges", "milestones_url": "/milestones{/number}", "notifications_url": "/notifications{?since,all,participating}",
		"pulls_url": "/pulls{/number}", "releases_url": "/releases{/id}", "stargazers_url": "/stargazers", "statuses_url": "/statuses/{sha}",
		"subscribers_url": "/subscribers", "subscription_url": "/subscription", "tags_url": "/tags", "teams_url": "/teams",
		"trees_url": "/git/trees{/sha}",
	} {
		m[name] = u + suffix
	}
	return m
}

// fullRepoJSON is the full "repository" shape, used where GitHub answers
// with it (the installation token's repository list), at time at.
func fullRepoJSON(root apiRoot, r *Repo, at time.Time) map[string]any {
	m := repoJSON(root, r)
	full := r.Owner + "/" + r.Name
	host := strings.TrimPrefix(root.web, "https://")
	now := ts(at)
	for k, v := range map[string]any{
		"clone_url": root.web + "/" + full + ".git", "git_url": "git://" + host + "/" + full + ".git",
		"ssh_url": "git@" + host + ":" + full + ".git", "svn_url": root.web + "/" + full, "mirror_url": nil, "homepage": nil,
		"default_branch": "main", "language": nil, "license": nil, "size": 0, "archived": false, "disabled": false,
		"forks": 0, "forks_count": 0, "open_issues": 0, "open_issues_count": 0, "stargazers_count": 0, "watchers": 0, "watchers_count": 0,
		"has_downloads": true, "has_issues": true, "has_projects": true, "has_wiki": true, "has_pages": false,
		"pushed_at": now, "created_at": now, "updated_at": now,
	} {
		m[k] = v
	}
	return m
}
