package workflowfile

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v90/github"

	"github.com/kargo-gha/kargo-gha/internal/bounded"
	"github.com/kargo-gha/kargo-gha/internal/ghclient"
)

// Cache keeps workflow files read in this process with their ETags, so a
// file read again is one conditional request (a 304 costs no rate limit),
// and the dispatch step can look at a file it has without any request.
type Cache struct {
	files bounded.Map[string, cached]
}

type cached struct {
	etag string
	file *File
	path string
}

const (
	// maxCached bounds the files kept: a controller promotes a few hundred
	// workflows at most.
	maxCached = 1024
	// cacheAge is how long a file is trusted without asking again when it
	// is only looked at (Cached); a read always asks.
	cacheAge = time.Hour
)

// Shared is the process's cache.
var Shared = &Cache{}

func cacheKey(c *ghclient.Client, workflow, ref string) string {
	return c.Repo.APIBaseURL + "|" + c.Repo.FullName() + "|" + workflow + "|" + ref
}

// Cached is the file of workflow at ref if this process read it lately,
// without a request.
func (k *Cache) Cached(c *ghclient.Client, workflow, ref string) (*File, bool) {
	e, ok := k.files.Get(cacheKey(c, workflow, ref), cacheAge)
	return e.file, ok
}

// Read reads workflow (a file name in .github/workflows, or a numeric ID)
// at ref: one conditional request for the file (and, for an ID, one for
// its path). path is the file's path in the repository.
func (k *Cache) Read(ctx context.Context, c *ghclient.Client, workflow, ref string) (f *File, path string, err error) {
	key := cacheKey(c, workflow, ref)
	prev, _ := k.files.Get(key, cacheAge)
	path = prev.path
	if path == "" {
		if path, err = workflowPath(ctx, c, workflow); err != nil {
			return nil, "", err
		}
	}
	u := fmt.Sprintf("repos/%s/%s/contents/%s?ref=%s", url.PathEscape(c.Repo.Owner), url.PathEscape(c.Repo.Name), escapePath(path), url.QueryEscape(ref))
	req, err := c.NewRequest(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", err
	}
	if prev.etag != "" {
		req.Header.Set("If-None-Match", prev.etag)
	}
	var content github.RepositoryContent
	resp, err := c.Do(req, &content)
	if resp != nil && resp.StatusCode == http.StatusNotModified && prev.file != nil {
		k.files.Put(key, prev, maxCached, cacheAge)
		return prev.file, path, nil
	}
	if err != nil {
		return nil, "", ghclient.Classify(err, fmt.Sprintf("reading %s at %s in %s", path, ref, c.Repo.FullName()), ghclient.Hints{
			NotFound:  fmt.Sprintf("no file %s at ref %q, or the credentials cannot see the repository (a token without access gets 404)", path, ref),
			Forbidden: "the credentials need contents:read (fine-grained token or GitHub App) or the repo scope (classic token) to read the workflow file",
		})
	}
	f, err = decode(&content)
	if err != nil {
		return nil, "", fmt.Errorf("%s at %s: %w", path, ref, err)
	}
	k.files.Put(key, cached{etag: resp.Header.Get("ETag"), file: f, path: path}, maxCached, cacheAge)
	return f, path, nil
}

func decode(content *github.RepositoryContent) (*File, error) {
	if content.GetType() != "file" {
		return nil, fmt.Errorf("not a file (%s)", content.GetType())
	}
	if content.GetSize() > MaxFileBytes || content.GetEncoding() == "none" {
		return nil, fmt.Errorf("the file is %d bytes, more than the %d read", content.GetSize(), MaxFileBytes)
	}
	raw, err := content.GetContent() // decodes base64
	if err != nil {
		return nil, fmt.Errorf("the file's content cannot be read: %w", err)
	}
	return Parse([]byte(raw))
}

// workflowPath is the file's path: .github/workflows/NAME, or for a numeric
// ID the path GitHub names for it.
func workflowPath(ctx context.Context, c *ghclient.Client, workflow string) (string, error) {
	id, err := strconv.ParseInt(workflow, 10, 64)
	if err != nil {
		return ".github/workflows/" + workflow, nil
	}
	wf, _, err := c.Actions.GetWorkflowByID(ctx, url.PathEscape(c.Repo.Owner), url.PathEscape(c.Repo.Name), id)
	if err != nil {
		return "", ghclient.Classify(err, fmt.Sprintf("looking up workflow %d in %s", id, c.Repo.FullName()), ghclient.Hints{
			NotFound: fmt.Sprintf("no workflow with ID %d in %s, or the credentials cannot see the repository", id, c.Repo.FullName()),
		})
	}
	if wf.GetPath() == "" || strings.Contains(wf.GetPath(), "..") {
		return "", fmt.Errorf("GitHub named no usable path for workflow %d", id)
	}
	return wf.GetPath(), nil
}

func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}
