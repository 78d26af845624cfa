package ghsim_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"testing"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
)

// Kargo's GitHub App credentials provider reads the repository with a
// freshly minted installation token before it hands the token out; a
// simulator without the route made it wait 43 s and go on unvalidated.
func TestGetRepositoryFollowsDescription(t *testing.T) {
	api := loadOpenAPI(t)
	schema := api.schema(t, "components", "schemas", "full-repository")
	sim, err := ghsim.New(ghsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	sim.AddRepo("myorg", "my-app")
	sim.AddToken("ghp_repo_reader", "octocat", true)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: sim.RootCAs()}}}
	get := func(path string) (int, []byte) {
		req, _ := http.NewRequest(http.MethodGet, sim.URL+"/api/v3"+path, nil)
		req.Header.Set("Authorization", "Bearer ghp_repo_reader")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	status, body := get("/repos/myorg/my-app")
	if status != http.StatusOK {
		t.Fatalf("GET the repository: %d %s", status, body)
	}
	api.validate(t, "GET /repos/myorg/my-app", schema, body)
	if status, body := get("/repos/myorg/missing"); status != http.StatusNotFound {
		t.Fatalf("GET a missing repository: %d %s, want 404", status, body)
	}
}
