package ghsim_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/credentials"
	"github.com/kargo-gha/kargo-gha/internal/ghclient"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/internal/repourl"
	"github.com/kargo-gha/kargo-gha/pkg/clock"
)

// The artifact and log endpoints answer as the description says: the
// listing's body, the downloads' 302 with a Location on another origin
// (signed, expiring: 403 from the blob store a minute later), 410 for an
// expired artifact with GitHub's error body; the query parameters the
// client sends are the description's.
func TestArtifactsAndLogsFollowGitHubsOpenAPIDescription(t *testing.T) {
	api := loadOpenAPI(t)
	const (
		listPath     = "/repos/{owner}/{repo}/actions/runs/{run_id}/artifacts"
		downloadPath = "/repos/{owner}/{repo}/actions/artifacts/{artifact_id}/{archive_format}"
		logsPath     = "/repos/{owner}/{repo}/actions/jobs/{job_id}/logs"
	)
	list200 := api.schema(t, "paths", listPath, "get", "responses", "200", "content", "application/json", "schema")
	gone := api.schema(t, "components", "schemas", "basic-error")
	for _, p := range []string{downloadPath, logsPath} {
		responses := api.doc["paths"].(map[string]any)[p].(map[string]any)["get"].(map[string]any)["responses"].(map[string]any)
		if _, ok := responses["302"]; !ok {
			t.Fatalf("%s: the description has no 302 any more", p)
		}
	}
	api.parameter(t, listPath, "get", "name")
	api.parameter(t, listPath, "get", "per_page")

	var mu sync.Mutex
	var seen []ghsim.Exchange
	fake := clock.NewFake(time.Now().Truncate(time.Second))
	sim, err := ghsim.New(ghsim.Options{Clock: fake, RunFor: time.Minute, Observe: func(e ghsim.Exchange) {
		mu.Lock()
		seen = append(seen, e)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	repo := sim.AddRepo("myorg", "my-app")
	sim.AddWorkflow(repo, ghsim.Workflow{File: "build.yml", Conclusion: "failure",
		Jobs:      []ghsim.Job{{Name: "build", Steps: []string{"Compile"}, FailAt: 1, Log: []string{"error: x"}}},
		Artifacts: []ghsim.Artifact{{Name: "outputs", Zip: ghsim.ZipFiles(map[string][]byte{"outputs.json": []byte(`{}`)}), Retention: time.Hour}}})
	sim.AddToken("ghp_openapi", "octocat", false)
	id := sim.CreateRun(repo, "build.yml", "main", "octocat", nil, 0)
	fake.Advance(2 * time.Minute)

	r, _ := repourl.Parse("https://github.com/myorg/my-app", repourl.Options{})
	c, err := (&ghclient.Pool{RootCAs: sim.RootCAs(), DialContext: sim.DialContext}).Client(r, credentials.Credentials{Token: "ghp_openapi", Source: "test"}, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	get := func(path string) (int, string) {
		req, _ := c.NewRequest(ctx, http.MethodGet, path, nil)
		hc := c.Client.Client()
		hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header.Get("Location")
	}
	artifactID, jobID := id*100+1, id*10+1
	for _, p := range []string{fmt.Sprintf("repos/myorg/my-app/actions/artifacts/%d/zip", artifactID), fmt.Sprintf("repos/myorg/my-app/actions/jobs/%d/logs", jobID)} {
		status, loc := get(p)
		u, err := url.Parse(loc)
		if status != http.StatusFound || err != nil || u.Scheme != "https" || u.Host == "api.github.com" || u.Query().Get("sig") == "" {
			t.Fatalf("%s: %d %q, want 302 to a signed URL on another origin", p, status, loc)
		}
		body, err := c.Download(ctx, p, "a blob", 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(body)
		body.Close()
		if len(b) == 0 {
			t.Fatalf("%s: empty blob", p)
		}
		// The signed URL expires a minute after it was handed out.
		fake.Advance(2 * time.Minute)
		resp, err := blobClient(sim).Get(loc)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%s: an expired signed URL answered %d, want 403", p, resp.StatusCode)
		}
	}
	req, _ := c.NewRequest(ctx, http.MethodGet, fmt.Sprintf("repos/myorg/my-app/actions/runs/%d/artifacts?name=outputs&per_page=100", id), nil)
	if _, err := c.Do(req, nil); err != nil {
		t.Fatal(err)
	}
	fake.Advance(2 * time.Hour)
	if status, _ := get(fmt.Sprintf("repos/myorg/my-app/actions/artifacts/%d/zip", artifactID)); status != http.StatusGone {
		t.Fatalf("an expired artifact's download answered %d, want 410", status)
	}
	if _, err := c.Do(req, nil); err != nil {
		t.Fatal(err)
	}

	eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return countAPI(seen) == sim.Stats().Requests })
	mu.Lock()
	defer mu.Unlock()
	checked := map[string]int{}
	for _, e := range seen {
		what := fmt.Sprintf("%s %s %d", e.Method, e.Path, e.Status)
		switch {
		case e.Route == "artifacts" && e.Status == 200:
			api.validate(t, what, list200, e.Body)
			if strings.Contains(string(e.Body), `"expired":true`) {
				checked["expired listing"]++
			}
			checked["list"]++
		case e.Route == "download-artifact" && e.Status == 410:
			api.validate(t, what, gone, e.Body)
			checked["410"]++
		case e.Route == "download-artifact" || e.Route == "job-logs":
			if e.Status != http.StatusFound {
				t.Errorf("%s: want 302", what)
			}
			checked[e.Route]++
		}
	}
	if checked["list"] < 2 || checked["expired listing"] != 1 || checked["410"] != 1 || checked["download-artifact"] == 0 || checked["job-logs"] == 0 {
		t.Fatalf("not every kind of exchange was checked: %v", checked)
	}
}

// countAPI counts the exchanges of the API (not the blob store).
func countAPI(seen []ghsim.Exchange) int {
	n := 0
	for _, e := range seen {
		if e.Route != "blob" {
			n++
		}
	}
	return n
}

// blobClient reaches the simulator's blob store with no credentials.
func blobClient(sim *ghsim.Server) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: sim.DialContext, TLSClientConfig: &tls.Config{RootCAs: sim.RootCAs(), MinVersion: tls.VersionTLS12}}}
}
