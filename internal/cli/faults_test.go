package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/docblock"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/internal/simtest"
	"github.com/kargo-gha/kargo-gha/pkg/clock"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite the fault matrix in docs/reliability.md")

// faultRow is one line of the fault matrix: a fault in one phase of
// `kargo-gha dispatch --wait` with GitHub App credentials, what the user
// sees, and how many runs it leaves behind (never more than one).
type faultRow struct {
	name       string
	phase      string
	fault      string
	sees       string
	answer     ghsim.DispatchAnswer
	ghes       bool // an Enterprise Server URL (no rate limits; 204 mode lists runs)
	faults     []*ghsim.Fault
	conclusion string
	args       []string
	wantExit   int
	wantMsg    string
	wantRuns   int
}

var faultMatrix = []faultRow{
	{name: "token-5xx-once", phase: "token exchange", fault: "502 once", sees: "nothing: retried with backoff", faults: []*ghsim.Fault{{Route: "token", Status: 502, Times: 1}}, wantRuns: 1},
	{name: "token-dropped-once", phase: "token exchange", fault: "connection dropped once", sees: "nothing: retried with backoff", faults: []*ghsim.Fault{{Route: "token", Drop: true, Times: 1}}, wantRuns: 1},
	{name: "token-5xx-always", phase: "token exchange", fault: "502 on every try", sees: "`obtaining a GitHub token … 502`; retry is safe", faults: []*ghsim.Fault{{Route: "token", Status: 502}}, wantExit: ExitTransient, wantMsg: "obtaining a GitHub token"},
	{name: "token-secondary-limit", phase: "token exchange", fault: "secondary rate limit, Retry-After 1 s", sees: "nothing: waited 1 s", faults: []*ghsim.Fault{{Route: "token", SecondaryRateLimit: time.Second, Times: 1}}, wantRuns: 1},
	{name: "dispatch-5xx-before-action", phase: "dispatch", fault: "502, GitHub did not act", sees: "`… GitHub answered 502 … its run did not appear within 3s; a run may still start: check …/actions/workflows/deploy.yml for runs created since <time> before dispatching again`; never sent twice", faults: []*ghsim.Fault{{Route: "dispatch", Status: 502, Times: 1}}, wantExit: ExitFinal, wantMsg: "before dispatching again"},
	{name: "dispatch-5xx-after-action", phase: "dispatch", fault: "502, GitHub did act", sees: "`cannot tell which run … run N (<url>) appeared in its window, and the dispatch's answer was lost … not guessing`; never sent twice; with --correlation-input the run is found (exit 0)", faults: []*ghsim.Fault{{Route: "dispatch", Status: 502, AfterAction: true, Times: 1}}, wantExit: ExitFinal, wantMsg: "answer was lost", wantRuns: 1},
	{name: "dispatch-dropped-after-action", phase: "dispatch", fault: "connection dropped after GitHub acted", sees: "as above: the run is named, never sent twice", faults: []*ghsim.Fault{{Route: "dispatch", Drop: true, AfterAction: true, Times: 1}}, wantExit: ExitFinal, wantMsg: "answer was lost", wantRuns: 1},
	{name: "dispatch-dropped-always", phase: "dispatch", fault: "connection dropped, GitHub did not act", sees: "`… a run may still start: check …/actions/workflows/deploy.yml … before dispatching again`; one POST", faults: []*ghsim.Fault{{Route: "dispatch", Drop: true}}, wantExit: ExitFinal, wantMsg: "before dispatching again"},
	{name: "dispatch-secondary-limit", phase: "dispatch", fault: "secondary rate limit, Retry-After 1 s", sees: "nothing: waited 1 s, then dispatched", faults: []*ghsim.Fault{{Route: "dispatch", SecondaryRateLimit: time.Second, Times: 1}}, wantRuns: 1},
	{name: "dispatch-secondary-limit-too-long", phase: "dispatch", fault: "secondary rate limit, Retry-After 10 min", sees: "`… secondary rate limit was hit; retry after 10m0s`; retry is safe", faults: []*ghsim.Fault{{Route: "dispatch", SecondaryRateLimit: 10 * time.Minute}}, wantExit: ExitTransient, wantMsg: "secondary rate limit"},
	{name: "dispatch-primary-limit", phase: "dispatch", fault: "primary rate limit exhausted (resets in an hour)", sees: "`… primary rate limit is exhausted …; it resets at <time>`; retry after the reset", faults: []*ghsim.Fault{{Route: "dispatch", PrimaryRateLimit: true}}, wantExit: ExitTransient, wantMsg: "it resets at"},
	{name: "dispatch-404", phase: "dispatch", fault: "404 (workflow missing)", sees: "`… 404 Not Found: check that .github/workflows/gone.yml exists …`", args: []string{"--workflow-file", "gone.yml"}, wantExit: ExitFinal, wantMsg: "404"},
	{name: "listing-5xx-3x", phase: "run lookup (204 answers)", fault: "503 three times", sees: "nothing: retried with backoff", answer: ghsim.AnswerNoContent, ghes: true, faults: []*ghsim.Fault{{Route: "list-runs", Status: 503, Times: 3}}, wantRuns: 1},
	{name: "listing-dropped-twice", phase: "run lookup (204 answers)", fault: "connection dropped twice", sees: "nothing: retried", answer: ghsim.AnswerNoContent, ghes: true, faults: []*ghsim.Fault{{Route: "list-runs", Drop: true, Times: 2}}, wantRuns: 1},
	{name: "listing-5xx-after-dispatch", phase: "run lookup (204 answers)", fault: "503 on every listing after the dispatch", sees: "`… its run did not appear within 3s; last listing error: … 503 …; a run may still start: check … before dispatching again`", answer: ghsim.AnswerNoContent, ghes: true,
		faults: []*ghsim.Fault{{Route: "list-runs", Status: 503}}, wantExit: ExitFinal, wantMsg: "run may still start", wantRuns: 1},
	{name: "wait-5xx-3x", phase: "wait", fault: "502 three times", sees: "nothing: retried", faults: []*ghsim.Fault{{Route: "get-run", Status: 502, Times: 3}}, wantRuns: 1},
	{name: "wait-dropped-twice", phase: "wait", fault: "connection dropped twice", sees: "nothing: retried", faults: []*ghsim.Fault{{Route: "get-run", Drop: true, Times: 2}}, wantRuns: 1},
	{name: "wait-5xx-always", phase: "wait", fault: "503 on every check", sees: "Running with backed-off checks, then `stopped waiting (the wait timeout of 3s passed); the run goes on … run N was dispatched: … do not dispatch again`; the run ID is on stdout", faults: []*ghsim.Fault{{Route: "get-run", Status: 503}},
		args: []string{"--wait-timeout", "3s"}, wantExit: ExitFinal, wantMsg: "do not dispatch again", wantRuns: 1},
	{name: "wait-primary-limit", phase: "wait", fault: "primary rate limit exhausted (resets in an hour)", sees: "`stopped waiting … the run goes on: GitHub's rate limit … checking run N again in 1h…`; the run ID is on stdout", faults: []*ghsim.Fault{{Route: "get-run", PrimaryRateLimit: true}},
		args: []string{"--wait-timeout", "3s"}, wantExit: ExitFinal, wantMsg: "rate limit", wantRuns: 1},
	{name: "wait-unexpected-conclusion", phase: "wait", fault: "run ends with failure", sees: "`run N finished \"failure\" (expected \"success\"): job \"build\" failed at step 1 \"Run the build\": <job URL>`", conclusion: "failure", wantExit: ExitFinal, wantMsg: `job "build" failed at step 1`, wantRuns: 1},
}

func TestFaultMatrix(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	for _, row := range faultMatrix {
		t.Run(row.name, func(t *testing.T) {
			t.Parallel()
			runs, secrets, out := runFaultRow(t, row, key, keyPEM)
			if runs != row.wantRuns {
				t.Errorf("%d runs created, want %d", runs, row.wantRuns)
			}
			// The secret scan: no token, JWT or key in anything the user sees.
			for _, s := range secrets {
				if len(s) >= 16 && strings.Contains(out, s) {
					t.Errorf("a secret (%.8s…) appears in the output", s)
				}
			}
		})
	}
}

// runFaultRow runs one row and returns the runs created, every secret that
// crossed the wire, and everything the command printed or wrote.
func runFaultRow(t *testing.T, row faultRow, key *rsa.PrivateKey, keyPEM string) (int, []string, string) {
	t.Helper()
	var mu sync.Mutex
	secrets := []string{keyPEM, strings.Split(keyPEM, "\n")[1]}
	fake := clock.NewFake(time.Now().Truncate(time.Second))
	sim, err := ghsim.New(ghsim.Options{Clock: fake, Answer: row.answer, RunDelay: 200 * time.Millisecond, QueuedFor: 200 * time.Millisecond, RunFor: 200 * time.Millisecond,
		Observe: func(e ghsim.Exchange) {
			mu.Lock()
			defer mu.Unlock()
			if a := e.Header.Get("Authorization"); a != "" {
				secrets = append(secrets, strings.TrimPrefix(a, "Bearer "))
			}
			if e.Route == "token" && e.Status == 201 {
				if i := bytes.Index(e.Body, []byte(`"token":"`)); i >= 0 {
					tok := e.Body[i+9:]
					secrets = append(secrets, string(tok[:bytes.IndexByte(tok, '"')]))
				}
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	repo := sim.AddRepo("myorg", "my-app")
	sim.AddWorkflow(repo, ghsim.Workflow{File: "deploy.yml", Inputs: []string{"environment"}, Conclusion: row.conclusion})
	sim.AddApp(&ghsim.App{ID: 4242, ClientID: "Iv23liFaultMatrix", PublicKey: &key.PublicKey, Installations: map[int64][]string{99: {"myorg/my-app"}}})
	for _, f := range row.faults {
		sim.InjectFault(f)
	}
	repoURL := "https://github.com/myorg/my-app"
	if row.ghes {
		repoURL = sim.RepoURL("myorg", "my-app")
	}
	kargoOut := filepath.Join(t.TempDir(), "kargo-output")
	var stdout, stderr bytes.Buffer
	fac := &Factory{
		IO: IOStreams{In: strings.NewReader(""), Out: &stdout, ErrOut: &stderr},
		Getenv: func(k string) string {
			return map[string]string{"GITHUB_APP_CLIENT_ID": "Iv23liFaultMatrix", "GITHUB_APP_INSTALLATION_ID": "99", "GITHUB_APP_PRIVATE_KEY": keyPEM, "KARGO_OUTPUT": kargoOut}[k]
		},
		Runner:  testRunner(simtest.Pool(sim), fake),
		Version: "test",
	}
	args := append([]string{"dispatch", "--repo-url", repoURL, "--workflow-file", "deploy.yml", "--ref", "main", "--input", "environment=prod",
		"--timeout", "3", "--wait", "--expected-conclusion", "success", "--poll-interval", "1s"}, row.args...)
	code := Run(context.Background(), fac, args)
	written, _ := os.ReadFile(kargoOut)
	out := stdout.String() + stderr.String() + string(written)
	if code != row.wantExit || !strings.Contains(stderr.String(), row.wantMsg) {
		t.Errorf("exit %d, want %d with %q; stderr:\n%s", code, row.wantExit, row.wantMsg, stderr.String())
	}
	if code == 0 && !strings.Contains(string(written), "runID=") {
		t.Errorf("KARGO_OUTPUT %q", written)
	}
	mu.Lock()
	defer mu.Unlock()
	return len(sim.Runs(repo)), append([]string(nil), secrets...), out
}

func TestHelpShowsNoSecrets(t *testing.T) {
	for _, cmd := range [][]string{{"--help"}, {"dispatch", "--help"}, {"wait", "--help"}} {
		var out bytes.Buffer
		fac := &Factory{IO: IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out}, Getenv: func(string) string { return "ghp_secret_in_env_0123456789" }}
		if code := Run(context.Background(), fac, cmd); code != 0 || strings.Contains(out.String(), "ghp_secret_in_env") {
			t.Fatalf("%v: exit %d, output shows the secret or failed:\n%s", cmd, code, out.String())
		}
	}
}

// TestFaultMatrixDocument keeps docs/reliability.md's table in step with
// the matrix above (go test ./internal/cli -run FaultMatrixDocument -update-docs).
func TestFaultMatrixDocument(t *testing.T) {
	var b strings.Builder
	b.WriteString("| Phase | Fault | What the user sees | Exit | Runs created | Reproduce |\n|---|---|---|---|---|---|\n")
	for _, r := range faultMatrix {
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | `go test ./internal/cli -run 'TestFaultMatrix/%s$'` |\n", r.phase, r.fault, r.sees, r.wantExit, r.wantRuns, r.name)
	}
	if err := docblock.Sync("../../docs/reliability.md", "fault-matrix", b.String(), *updateDocs); err != nil {
		t.Fatal(err)
	}
}
