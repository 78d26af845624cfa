package ghsim

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"time"
)

// defaultArtifactRetention is GitHub's default retention of artifacts.
const defaultArtifactRetention = 90 * 24 * time.Hour

// Artifact is an artifact every run of a workflow uploads, visible once
// the run has completed.
type Artifact struct {
	Name string
	// Zip is the archive as downloaded: ZipFiles builds one; tests build
	// hostile ones (a zip bomb, a path-traversal entry) by hand.
	Zip []byte
	// Retention is how long after upload it expires (90 days when 0); an
	// expired artifact is listed with expired: true and its download
	// answers 410.
	Retention time.Duration
}

// ZipFiles builds an artifact archive of files (name to content), as
// actions/upload-artifact does: each file an entry at its relative path.
func ZipFiles(files map[string][]byte) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w, _ := zw.Create(n)
		_, _ = w.Write(files[n])
	}
	_ = zw.Close()
	return b.Bytes()
}

// artifactOf is a run's k-th artifact: its ID, upload and expiry times.
func (r *run) artifactOf(k int) (id int64, uploaded, expires time.Time) {
	a := r.workflow.Artifacts[k]
	_, _, done := r.status(r.createdAt.Add(100 * 365 * 24 * time.Hour))
	ret := a.Retention
	if ret <= 0 {
		ret = defaultArtifactRetention
	}
	return r.id*100 + int64(k) + 1, done, done.Add(ret)
}

// artifactJSON is GitHub's artifact object.
func (r *run) artifactJSON(root apiRoot, k int, now time.Time) map[string]any {
	a := r.workflow.Artifacts[k]
	id, uploaded, expires := r.artifactOf(k)
	full := r.repo.Owner + "/" + r.repo.Name
	sum := sha256.Sum256(a.Zip)
	return map[string]any{
		"id": id, "node_id": fmt.Sprintf("MDg6QXJ0aWZhY3Q%d", id), "name": a.Name, "size_in_bytes": len(a.Zip),
		"url":                  fmt.Sprintf("%s/repos/%s/actions/artifacts/%d", root.api, full, id),
		"archive_download_url": fmt.Sprintf("%s/repos/%s/actions/artifacts/%d/zip", root.api, full, id),
		"expired":              !now.Before(expires),
		"created_at":           ts(uploaded), "updated_at": ts(uploaded), "expires_at": ts(expires),
		"digest": "sha256:" + hex.EncodeToString(sum[:]),
		"workflow_run": map[string]any{
			"id": r.id, "repository_id": r.repo.ID, "head_repository_id": r.repo.ID,
			"head_branch": r.ref, "head_sha": fmt.Sprintf("%040x", r.id),
		},
	}
}

// listArtifacts answers GET /repos/{owner}/{repo}/actions/runs/{id}/artifacts
// (name= filters by exact name). Artifacts appear once the run completed.
func (s *Server) listArtifacts(w http.ResponseWriter, r *http.Request, tok string, _ *Fault) {
	now := s.now()
	name := r.URL.Query().Get("name")
	s.mu.Lock()
	rn := s.findRun(r, now)
	list := []any{}
	if rn != nil {
		if st, _, _ := rn.status(now); st == "completed" {
			for k, a := range rn.workflow.Artifacts {
				if name == "" || a.Name == name {
					list = append(list, rn.artifactJSON(rootOf(r), k, now))
				}
			}
		}
	}
	s.mu.Unlock()
	if rn == nil {
		writeError(w, http.StatusNotFound, "Not Found", docsBase+"/actions/artifacts#list-workflow-run-artifacts")
		return
	}
	s.writeJSON(w, r, tok, http.StatusOK, map[string]any{"total_count": len(list), "artifacts": list})
}

// findArtifact is the artifact named by {artifact_id} of the request's
// repository, with its run and index; s.mu is held.
func (s *Server) findArtifact(r *http.Request, now time.Time) (*run, int) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	repo := s.repo(r.PathValue("owner"), r.PathValue("repo"))
	if repo == nil || err != nil {
		return nil, 0
	}
	for _, rn := range repo.runs {
		if st, _, _ := rn.status(now); rn.id != id/100 || st != "completed" {
			continue
		}
		if k := int(id%100) - 1; k >= 0 && k < len(rn.workflow.Artifacts) {
			return rn, k
		}
	}
	return nil, 0
}

// downloadArtifact answers GET .../actions/artifacts/{id}/{archive_format}:
// 302 to a signed blob URL, 410 once the artifact expired.
func (s *Server) downloadArtifact(w http.ResponseWriter, r *http.Request, _ string, _ *Fault) {
	now := s.now()
	s.mu.Lock()
	rn, k := s.findArtifact(r, now)
	var expires time.Time
	var id int64
	if rn != nil {
		id, _, expires = rn.artifactOf(k)
	}
	s.mu.Unlock()
	switch {
	case rn == nil || r.PathValue("format") != "zip":
		writeError(w, http.StatusNotFound, "Not Found", docsBase+"/actions/artifacts#download-an-artifact")
	case !now.Before(expires):
		writeError(w, http.StatusGone, "Artifact has expired", docsBase+"/actions/artifacts#download-an-artifact")
	default:
		s.redirectToBlob(w, fmt.Sprintf("/artifacts/%d", id))
	}
}

// artifactBlob is the archive of artifact id; s.mu is held.
func (s *Server) artifactBlob(id int64) (blob, bool) {
	for _, repo := range s.repos {
		for _, rn := range repo.runs {
			if k := int(id%100) - 1; rn.id == id/100 && k >= 0 && k < len(rn.workflow.Artifacts) {
				z := rn.workflow.Artifacts[k].Zip
				return blob{contentType: "application/zip", size: int64(len(z)), write: func(w io.Writer) error {
					_, err := w.Write(z)
					return err
				}}, true
			}
		}
	}
	return blob{}, false
}

// blobFor is what the blob store serves at path; s.mu is held.
func (s *Server) blobFor(path string) (blob, bool) {
	kind, id, ok := blobPath(path)
	switch {
	case !ok:
		return blob{}, false
	case kind == "artifacts":
		return s.artifactBlob(id)
	}
	return s.logBlob(id)
}
