package workflowfile_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"

	"github.com/kargo-gha/kargo-gha/internal/credentials"
	"github.com/kargo-gha/kargo-gha/internal/ghclient"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/internal/repourl"
	"github.com/kargo-gha/kargo-gha/internal/simtest"
	"github.com/kargo-gha/kargo-gha/internal/workflowfile"
)

const workflow = `name: Deploy
run-name: Deploy ${{ inputs.environment }} ${{ inputs.dispatch_key }}
on:
  workflow_dispatch:
    inputs:
      environment:
        type: choice
        options: [dev, prod]
        required: true
      dispatch_key:
        type: string
jobs: {}
`

type dryRunFixture struct {
	sim  *ghsim.Server
	pool *ghclient.Pool
	wf   *ghsim.Workflow
	app  func(readOnly bool) credentials.Credentials
}

func newDryRunFixture(t *testing.T) *dryRunFixture {
	t.Helper()
	sim, pool := simtest.Start(t, ghsim.Options{})
	repo := sim.AddRepo("myorg", "my-app")
	wf := sim.AddWorkflow(repo, ghsim.Workflow{File: "deploy.yml", Inputs: []string{"environment", "dispatch_key"}, Content: workflow})
	sim.AddWorkflow(repo, ghsim.Workflow{File: "push-only.yml", TriggerRefs: []string{"release"}})
	sim.AddToken("ghp_writer", "octocat", false)
	sim.AddToken("ghp_reader", "reader", true)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	sim.AddApp(&ghsim.App{ID: 7, ClientID: "Iv23liWriter", PublicKey: &key.PublicKey, Installations: map[int64][]string{70: {"myorg/my-app"}}})
	sim.AddApp(&ghsim.App{ID: 8, ClientID: "Iv23liReader", PublicKey: &key.PublicKey, Installations: map[int64][]string{80: {"myorg/my-app"}}, ActionsReadOnly: true})
	app := func(readOnly bool) credentials.Credentials {
		a := &credentials.App{ClientID: "Iv23liWriter", InstallationID: 70, PrivateKeyPEM: pemKey}
		if readOnly {
			a = &credentials.App{ClientID: "Iv23liReader", InstallationID: 80, PrivateKeyPEM: pemKey}
		}
		return credentials.Credentials{App: a, Source: "test app"}
	}
	return &dryRunFixture{sim: sim, pool: pool, wf: wf, app: app}
}

func (f *dryRunFixture) client(t *testing.T, creds credentials.Credentials) *ghclient.Client {
	t.Helper()
	u, err := repourl.Parse(f.sim.RepoURL("myorg", "my-app"), repourl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if creds.Source == "" {
		creds.Source = "test"
	}
	c, err := f.pool.Client(u, creds, false)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func good() workflowfile.Dispatch {
	return workflowfile.Dispatch{Inputs: map[string]workflowfile.Value{"environment": {Text: "prod"}}, CorrelationInput: "dispatch_key"}
}

func TestDryRunReadsTheFileOnceAndDispatchesNothing(t *testing.T) {
	t.Parallel()
	f := newDryRunFixture(t)
	c := f.client(t, credentials.Credentials{Token: "ghp_writer"})
	cache := &workflowfile.Cache{}
	for i := range 2 {
		r := workflowfile.DryRun(context.Background(), c, cache, "deploy.yml", "main", good())
		if !r.OK() || r.Path != ".github/workflows/deploy.yml" || r.Access == nil || r.Access.CanDispatch == nil || !*r.Access.CanDispatch {
			t.Fatalf("dry run %d: %+v (access %+v)", i, r, r.Access)
		}
	}
	st := f.sim.Stats()
	if st.ByRoute["dispatch"] != 0 || st.Dispatches != 0 {
		t.Fatalf("a dry run dispatched: %+v", st)
	}
	// One request for the file each time; the second is conditional and
	// answered 304.
	if st.ByRoute["contents"] != 2 || st.NotModified < 1 {
		t.Fatalf("stats %+v, want two reads of the file, the second a 304", st)
	}
	if _, ok := cache.Cached(c, "deploy.yml", "main"); !ok {
		t.Fatal("the file read is not cached")
	}
}

func TestDryRunByWorkflowIDReadsItsPath(t *testing.T) {
	t.Parallel()
	f := newDryRunFixture(t)
	c := f.client(t, credentials.Credentials{Token: "ghp_writer"})
	r := workflowfile.DryRun(context.Background(), c, &workflowfile.Cache{}, fmt.Sprint(f.wf.ID), "main", good())
	if !r.OK() || r.Path != ".github/workflows/deploy.yml" {
		t.Fatalf("report %+v", r)
	}
	if n := f.sim.Stats().ByRoute["get-workflow"]; n != 1 {
		t.Fatalf("%d workflow look-ups, want 1", n)
	}
}

func TestDryRunNamesEveryProblem(t *testing.T) {
	t.Parallel()
	f := newDryRunFixture(t)
	cases := []struct {
		name     string
		creds    credentials.Credentials
		workflow string
		d        workflowfile.Dispatch
		want     []string
	}{
		{"read-only token", credentials.Credentials{Token: "ghp_reader"}, "deploy.yml", good(), []string{"credentials: the credentials cannot dispatch"}},
		{"App with actions: read", f.app(true), "deploy.yml", good(), []string{"credentials: the credentials cannot dispatch (GitHub App installation, actions: read)"}},
		{"App with actions: write", f.app(false), "deploy.yml", good(), nil},
		{"no trigger at this ref", credentials.Credentials{Token: "ghp_writer"}, "push-only.yml", workflowfile.Dispatch{}, []string{"workflowFile: the workflow has no workflow_dispatch trigger"}},
		{"no such file", credentials.Credentials{Token: "ghp_writer"}, "missing.yml", workflowfile.Dispatch{}, []string{"workflowFile: reading .github/workflows/missing.yml at main"}},
		{"template mistakes", credentials.Credentials{Token: "ghp_writer"}, "deploy.yml",
			workflowfile.Dispatch{Inputs: map[string]workflowfile.Value{"environment": {Text: "qa"}, "tag": {Text: "1"}}, CorrelationInput: "key"},
			[]string{`inputs.environment: "qa" is not one of`, "inputs.tag: the workflow does not declare this input; it declares dispatch_key, environment", `correlationInput: "key" is not a declared input`, "correlationInput: the workflow's run-name"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := workflowfile.DryRun(context.Background(), f.client(t, tc.creds), &workflowfile.Cache{}, tc.workflow, "main", tc.d)
			if len(r.Problems) != len(tc.want) {
				t.Fatalf("problems %v, want %v", r.Problems, tc.want)
			}
			for i, p := range r.Problems {
				if !strings.Contains(p.String(), tc.want[i]) {
					t.Errorf("problem %d is %q, want %q", i, p, tc.want[i])
				}
			}
		})
	}
	if st := f.sim.Stats(); st.ByRoute["dispatch"] != 0 {
		t.Fatalf("%d POSTs, want none", st.ByRoute["dispatch"])
	}
}
