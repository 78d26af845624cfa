package ghsim_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v90/github"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/kargo-gha/kargo-gha/internal/credentials"
	"github.com/kargo-gha/kargo-gha/internal/ghclient"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/internal/repourl"
	"github.com/kargo-gha/kargo-gha/pkg/clock"
	"github.com/kargo-gha/kargo-gha/pkg/dispatch"
)

// openAPIPath is where `npm ci --prefix test/openapi` puts GitHub's OpenAPI
// description (package @octokit/openapi, pinned in test/openapi).
const openAPIPath = "../../test/openapi/node_modules/@octokit/openapi/generated/api.github.com.json"

// openAPI compiles schemas out of GitHub's OpenAPI 3.0 description with the
// project's JSON Schema validator. OpenAPI's "nullable: true" becomes a
// "null" alternative, which is what it means.
type openAPI struct {
	doc map[string]any
	c   *jsonschema.Compiler
}

func loadOpenAPI(t *testing.T) *openAPI {
	t.Helper()
	raw, err := os.ReadFile(openAPIPath)
	if os.IsNotExist(err) {
		if os.Getenv("KARGO_GHA_REQUIRE_OPENAPI") != "" {
			t.Fatalf("%s is missing: run npm ci --prefix test/openapi", openAPIPath)
		}
		t.Skip("GitHub's OpenAPI description is not installed (npm ci --prefix test/openapi)")
	}
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	nullable(doc)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft4)
	c.AssertFormat()
	if err := c.AddResource("https://api.github.com/openapi.json", doc); err != nil {
		t.Fatal(err)
	}
	return &openAPI{doc: doc.(map[string]any), c: c}
}

func nullable(v any) {
	switch t := v.(type) {
	case map[string]any:
		for _, child := range t {
			nullable(child)
		}
		if t["nullable"] == true {
			delete(t, "nullable")
			if typ, ok := t["type"].(string); ok {
				t["type"] = []any{typ, "null"}
				if enum, ok := t["enum"].([]any); ok {
					t["enum"] = append(enum, nil)
				}
			} else {
				inner := map[string]any{}
				for k, val := range t {
					inner[k] = val
					delete(t, k)
				}
				t["anyOf"] = []any{inner, map[string]any{"type": "null"}}
			}
		}
	case []any:
		for _, child := range t {
			nullable(child)
		}
	}
}

func pointer(parts ...string) string {
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(p, "~", "~0"), "/", "~1")
	}
	return "https://api.github.com/openapi.json#/" + strings.Join(parts, "/")
}

func (o *openAPI) schema(t *testing.T, parts ...string) *jsonschema.Schema {
	t.Helper()
	s, err := o.c.Compile(pointer(parts...))
	if err != nil {
		t.Fatalf("compiling %v: %v", parts, err)
	}
	return s
}

func (o *openAPI) validate(t *testing.T, what string, s *jsonschema.Schema, body []byte) {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s: not JSON: %v: %s", what, err, body)
	}
	if err := s.Validate(v); err != nil {
		t.Errorf("%s does not match GitHub's OpenAPI description: %v", what, err)
	}
}

// parameterSchema finds a query parameter's schema for an operation.
func (o *openAPI) parameter(t *testing.T, path, method, name string) map[string]any {
	op := o.doc["paths"].(map[string]any)[path].(map[string]any)[method].(map[string]any)
	for _, p := range op["parameters"].([]any) {
		pm := p.(map[string]any)
		if ref, ok := pm["$ref"].(string); ok {
			pm = o.doc["components"].(map[string]any)["parameters"].(map[string]any)[strings.TrimPrefix(ref, "#/components/parameters/")].(map[string]any)
		}
		if pm["name"] == name && pm["in"] == "query" {
			return pm
		}
	}
	t.Fatalf("%s %s has no query parameter %q", method, path, name)
	return nil
}

// createdRange is GitHub's date search syntax, which GitHub accepts for
// "created" although the description types it as a date-time.
var createdRange = regexp.MustCompile(`^(>=|<=|>|<)?\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2}))?(\.\.\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2}))?)?$`)

// TestSimulatorAndClientFollowGitHubsOpenAPIDescription drives the real
// client against the simulator in every answer mode and checks each request
// the client sent and each answer the simulator gave against the
// description: request bodies, query parameters, and response bodies for
// 200, 201, 204 and error statuses.
func TestSimulatorAndClientFollowGitHubsOpenAPIDescription(t *testing.T) {
	api := loadOpenAPI(t)
	const (
		dispatchPath = "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches"
		listPath     = "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs"
		runPath      = "/repos/{owner}/{repo}/actions/runs/{run_id}"
		jobsPath     = "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs"
		pendingPath  = "/repos/{owner}/{repo}/actions/runs/{run_id}/pending_deployments"
		tokenPath    = "/app/installations/{installation_id}/access_tokens"
	)
	schemas := map[string]*jsonschema.Schema{
		"dispatch-request": api.schema(t, "paths", dispatchPath, "post", "requestBody", "content", "application/json", "schema"),
		"dispatch-200":     api.schema(t, "paths", dispatchPath, "post", "responses", "200", "content", "application/json", "schema"),
		"list-200":         api.schema(t, "paths", listPath, "get", "responses", "200", "content", "application/json", "schema"),
		"run-200":          api.schema(t, "paths", runPath, "get", "responses", "200", "content", "application/json", "schema"),
		"jobs-200":         api.schema(t, "paths", jobsPath, "get", "responses", "200", "content", "application/json", "schema"),
		"pending-200":      api.schema(t, "paths", pendingPath, "get", "responses", "200", "content", "application/json", "schema"),
		"token-201":        api.schema(t, "paths", tokenPath, "post", "responses", "201", "content", "application/json", "schema"),
		"error":            api.schema(t, "components", "schemas", "basic-error"),
	}
	perPage := api.parameter(t, listPath, "get", "per_page")
	if perPage["schema"].(map[string]any)["type"] != "integer" {
		t.Fatalf("per_page schema changed: %v", perPage)
	}

	for _, answer := range []ghsim.DispatchAnswer{ghsim.AnswerRunDetails, ghsim.AnswerNoContent, ghsim.AnswerGHES320} {
		t.Run(fmt.Sprint("answer=", answer), func(t *testing.T) {
			var mu sync.Mutex
			var seen []ghsim.Exchange
			fake := clock.NewFake(time.Now().Truncate(time.Second)) // the simulator's and the dispatcher's
			sim, err := ghsim.New(ghsim.Options{Clock: fake, Answer: answer, RunDelay: 100 * time.Millisecond, Observe: func(e ghsim.Exchange) {
				mu.Lock()
				seen = append(seen, e)
				mu.Unlock()
			}})
			if err != nil {
				t.Fatal(err)
			}
			defer sim.Close()
			repo := sim.AddRepo("myorg", "my-app")
			sim.AddWorkflow(repo, ghsim.Workflow{File: "deploy.yml", Inputs: []string{"environment"}, Conclusion: "failure",
				Jobs:        []ghsim.Job{{Name: "deploy (prod)", Steps: []string{"Set up job", "kubectl apply"}, FailAt: 2}, {Name: "notify", Steps: []string{"Send"}, Cancelled: true}},
				Environment: &ghsim.Environment{Name: "prod", Reviewers: []string{"alice"}, ApprovalFor: 300 * time.Millisecond}})
			sim.AddToken("ghp_openapi", "octocat", false)
			pool := &ghclient.Pool{RootCAs: sim.RootCAs(), DialContext: sim.DialContext}
			for _, u := range []string{"https://github.com/myorg/my-app", sim.RepoURL("myorg", "my-app")} {
				r, _ := repourl.Parse(u, repourl.Options{})
				c, err := pool.Client(r, credentials.Credentials{Token: "ghp_openapi", Source: "test"}, false)
				if err != nil {
					t.Fatal(err)
				}
				d := &dispatch.Dispatcher{Clock: fake}
				res, err := d.Dispatch(context.Background(), c, dispatch.Request{WorkflowFile: "deploy.yml", Ref: "main", Inputs: map[string]string{"environment": "prod"}, Timeout: 10 * time.Second}, "")
				if err != nil {
					t.Fatal(err)
				}
				ctx := context.Background()
				if _, _, err := c.Actions.GetWorkflowRunByID(ctx, "myorg", "my-app", res.ID); err != nil {
					t.Fatal(err)
				}
				// Jobs and pending deployments, while the run waits for
				// approval and once it has failed.
				if _, _, err := c.Actions.GetPendingDeployments(ctx, "myorg", "my-app", res.ID); err != nil {
					t.Fatal(err)
				}
				fake.Advance(400 * time.Millisecond)
				if _, _, err := c.Actions.ListWorkflowJobs(ctx, "myorg", "my-app", res.ID, &github.ListWorkflowJobsOptions{Filter: "latest"}); err != nil {
					t.Fatal(err)
				}
				// An error answer.
				_, _ = d.Dispatch(ctx, c, dispatch.Request{WorkflowFile: "missing.yml", Ref: "main", Timeout: time.Second}, "")
			}
			// The simulator reports an exchange once its handler is done,
			// which can be after the client decoded the answer.
			eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == sim.Stats().Requests })
			mu.Lock()
			defer mu.Unlock()
			checked := map[string]int{}
			for _, e := range seen {
				what := fmt.Sprintf("%s %s %d", e.Method, e.Path, e.Status)
				switch {
				case e.Status >= 400 && !(e.Status == 400 && e.Route == "dispatch"):
					api.validate(t, what, schemas["error"], e.Body)
					checked["error"]++
				case e.Route == "dispatch":
					if e.Status != 400 {
						api.validate(t, what+" request", schemas["dispatch-request"], e.RequestBody)
					}
					if e.Status == 200 {
						api.validate(t, what, schemas["dispatch-200"], e.Body)
					} else if e.Status != 204 && e.Status != 400 {
						t.Errorf("%s: status not in the description", what)
					}
					checked["dispatch"]++
				case e.Route == "list-runs" && e.Status == 200:
					api.validate(t, what, schemas["list-200"], e.Body)
					// The shared listing (internal/runlist) asks for the
					// most recent runs without a created filter; a
					// search's own listing sends one.
					if c, ok := e.Query["created"]; ok && (len(c) != 1 || !createdRange.MatchString(c[0])) {
						t.Errorf("%s: created=%v is not GitHub's date search syntax", what, c)
					}
					checked["list"]++
				case e.Route == "get-run":
					api.validate(t, what, schemas["run-200"], e.Body)
					checked["run"]++
				case e.Route == "jobs":
					api.validate(t, what, schemas["jobs-200"], e.Body)
					checked["jobs"]++
				case e.Route == "pending-deployments":
					api.validate(t, what, schemas["pending-200"], e.Body)
					checked["pending"]++
				}
			}
			if checked["dispatch"] == 0 || checked["run"] == 0 || checked["error"] == 0 || checked["jobs"] == 0 || checked["pending"] == 0 || (answer != ghsim.AnswerRunDetails && checked["list"] == 0) {
				t.Fatalf("not every kind of exchange was checked: %v", checked)
			}
		})
	}
}

func TestTokenExchangeAnswerFollowsDescription(t *testing.T) {
	api := loadOpenAPI(t)
	schema := api.schema(t, "paths", "/app/installations/{installation_id}/access_tokens", "post", "responses", "201", "content", "application/json", "schema")
	bodies := make(chan []byte, 1)
	sim, err := ghsim.New(ghsim.Options{Observe: func(e ghsim.Exchange) {
		if e.Route == "token" {
			bodies <- e.Body
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	app := testApp(t, sim)
	r, _ := repourl.Parse("https://github.com/myorg/my-app", repourl.Options{})
	c, err := (&ghclient.Pool{RootCAs: sim.RootCAs(), DialContext: sim.DialContext}).Client(r, app, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Tokens.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case body := <-bodies:
		api.validate(t, "token exchange", schema, body)
	case <-time.After(5 * time.Second):
		t.Fatal("the simulator never reported the token exchange")
	}
}

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 5s")
}
