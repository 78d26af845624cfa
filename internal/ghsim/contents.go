package ghsim

import (
	"crypto/sha1" //nolint:gosec // git's blob ID, not a security measure
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// contentRoutes serves what a dry run reads: the repository (with the
// caller's permissions), a workflow by ID or file name, and a file's
// contents at a ref.
func (s *Server) contentRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /repos/{owner}/{repo}", s.route("get-repo", s.getRepo))
	mux.HandleFunc("GET /repos/{owner}/{repo}/actions/workflows/{workflow}", s.route("get-workflow", s.getWorkflow))
	mux.HandleFunc("GET /repos/{owner}/{repo}/contents/{path...}", s.route("contents", s.getContents))
}

func (a *App) actionsPermission() string {
	if a.ActionsReadOnly {
		return "read"
	}
	return "write"
}

// getRepo answers with the full repository; a user token's answer carries
// its permissions (an installation token's does not, as on GitHub).
func (s *Server) getRepo(w http.ResponseWriter, r *http.Request, tok string, _ *Fault) {
	s.mu.Lock()
	repo := s.repo(r.PathValue("owner"), r.PathValue("repo"))
	info := s.tokens[tok]
	s.mu.Unlock()
	if repo == nil {
		writeError(w, http.StatusNotFound, "Not Found", docsBase+"/repos/repos#get-a-repository")
		return
	}
	body := fullRepoJSON(rootOf(r), repo, s.now())
	body["visibility"] = "public"
	body["has_discussions"], body["network_count"], body["subscribers_count"] = false, 0, 0
	if info.repos == nil {
		write := !info.readOnly
		body["permissions"] = map[string]bool{"admin": false, "maintain": false, "push": write, "triage": write, "pull": true}
	}
	s.writeJSON(w, r, tok, http.StatusOK, body)
}

// getWorkflow answers with a workflow found by numeric ID or file name.
func (s *Server) getWorkflow(w http.ResponseWriter, r *http.Request, tok string, _ *Fault) {
	s.mu.Lock()
	repo := s.repo(r.PathValue("owner"), r.PathValue("repo"))
	wf := s.workflowByName(repo, r.PathValue("workflow"))
	s.mu.Unlock()
	if wf == nil {
		writeError(w, http.StatusNotFound, "Not Found", docsBase+"/actions/workflows#get-a-workflow")
		return
	}
	root := rootOf(r)
	full := repo.Owner + "/" + repo.Name
	now := ts(s.now())
	s.writeJSON(w, r, tok, http.StatusOK, map[string]any{
		"id": wf.ID, "node_id": fmt.Sprintf("W_kwDO%d", wf.ID), "name": strings.TrimSuffix(wf.File, ".yml"),
		"path": ".github/workflows/" + wf.File, "state": "active", "created_at": now, "updated_at": now,
		"url":       fmt.Sprintf("%s/repos/%s/actions/workflows/%d", root.api, full, wf.ID),
		"html_url":  fmt.Sprintf("%s/%s/blob/main/.github/workflows/%s", root.web, full, wf.File),
		"badge_url": fmt.Sprintf("%s/%s/workflows/%s/badge.svg", root.web, full, wf.File),
	})
}

// workflowByName finds a workflow by file name or numeric ID; s.mu is held.
func (s *Server) workflowByName(repo *Repo, name string) *Workflow {
	if repo == nil {
		return nil
	}
	if wf := repo.workflows[name]; wf != nil {
		return wf
	}
	if id, err := strconv.ParseInt(name, 10, 64); err == nil {
		for _, wf := range repo.workflows {
			if wf.ID == id {
				return wf
			}
		}
	}
	return nil
}

// getContents serves a workflow file at a ref as GitHub's content-file
// object (base64), with an ETag: a conditional request is answered 304.
func (s *Server) getContents(w http.ResponseWriter, r *http.Request, tok string, _ *Fault) {
	path := r.PathValue("path")
	ref := r.URL.Query().Get("ref")
	if ref == "" {
		ref = "main"
	}
	ref = strings.TrimPrefix(strings.TrimPrefix(ref, "refs/heads/"), "refs/tags/")
	s.mu.Lock()
	repo := s.repo(r.PathValue("owner"), r.PathValue("repo"))
	var wf *Workflow
	if repo != nil && repo.Refs[ref] {
		if file, ok := strings.CutPrefix(path, ".github/workflows/"); ok {
			wf = repo.workflows[file]
		}
	}
	var content string
	if wf != nil {
		content = wf.fileContent(ref)
	}
	s.mu.Unlock()
	if wf == nil {
		writeError(w, http.StatusNotFound, "Not Found", docsBase+"/repos/contents#get-repository-content")
		return
	}
	root := rootOf(r)
	full := repo.Owner + "/" + repo.Name
	sum := sha1.Sum([]byte(fmt.Sprintf("blob %d\x00%s", len(content), content))) //nolint:gosec // git's blob ID
	sha := hex.EncodeToString(sum[:])
	self := fmt.Sprintf("%s/repos/%s/contents/%s?ref=%s", root.api, full, path, ref)
	gitURL := fmt.Sprintf("%s/repos/%s/git/blobs/%s", root.api, full, sha)
	html := fmt.Sprintf("%s/%s/blob/%s/%s", root.web, full, ref, path)
	s.writeJSON(w, r, tok, http.StatusOK, map[string]any{
		"type": "file", "encoding": "base64", "size": len(content), "name": path[strings.LastIndex(path, "/")+1:], "path": path,
		"content": base64.StdEncoding.EncodeToString([]byte(content)), "sha": sha,
		"url": self, "git_url": gitURL, "html_url": html,
		"download_url": fmt.Sprintf("%s/%s/raw/%s/%s", root.web, full, ref, path),
		"_links":       map[string]any{"self": self, "git": gitURL, "html": html},
	})
}

// fileContent is the workflow's YAML at ref: Content, or one made from the
// declared inputs, with a workflow_dispatch trigger where TriggerRefs
// allow it.
func (wf *Workflow) fileContent(ref string) string {
	if wf.Content != "" {
		return wf.Content
	}
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\n", strings.TrimSuffix(wf.File, ".yml"))
	if wf.RunName != "" {
		fmt.Fprintf(&b, "run-name: %q\n", wf.RunName)
	}
	if len(wf.TriggerRefs) > 0 && !contains(wf.TriggerRefs, ref) {
		b.WriteString("on: push\n")
	} else {
		b.WriteString("on:\n  workflow_dispatch:\n")
		if len(wf.Inputs) > 0 {
			b.WriteString("    inputs:\n")
		}
		for _, in := range wf.Inputs {
			fmt.Fprintf(&b, "      %s:\n        type: string\n", in)
		}
	}
	b.WriteString("jobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ok\n")
	return b.String()
}
