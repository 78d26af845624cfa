package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/ghclient"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/internal/simtest"
	"github.com/kargo-gha/kargo-gha/pkg/clock"
	"github.com/kargo-gha/kargo-gha/pkg/step"
)

const testToken = "ghp_cli_test_token_abcdef"

type cliFixture struct {
	// clock is the fake clock the simulator and the command share.
	clock          *clock.Fake
	sim            *ghsim.Server
	repo           *ghsim.Repo
	env            map[string]string
	stdout, stderr bytes.Buffer
	stdin          string
}

func newCLIFixture(t *testing.T, opts ghsim.Options) *cliFixture {
	t.Helper()
	fake := clock.NewFake(time.Now().Truncate(time.Second))
	if opts.Clock == nil {
		opts.Clock = fake // a test that runs the built command passes the system clock
	}
	sim, _ := simtest.Start(t, opts)
	repo := sim.AddRepo("myorg", "my-app")
	sim.AddWorkflow(repo, ghsim.Workflow{File: "deploy.yml", Inputs: []string{"environment", "image_tag", "promotion_id", "deploy_version"}})
	sim.AddToken(testToken, "octocat", false)
	return &cliFixture{clock: fake, sim: sim, repo: repo, env: map[string]string{}}
}

func (f *cliFixture) run(t *testing.T, args ...string) int {
	t.Helper()
	return f.runCtx(t, context.Background(), args...)
}

func (f *cliFixture) runCtx(t *testing.T, ctx context.Context, args ...string) int {
	t.Helper()
	f.stdout.Reset()
	f.stderr.Reset()
	fac := &Factory{
		IO:      IOStreams{In: strings.NewReader(f.stdin), Out: &f.stdout, ErrOut: &f.stderr},
		Getenv:  func(k string) string { return f.env[k] },
		Runner:  testRunner(simtest.Pool(f.sim), f.clock),
		Version: "test",
	}
	return Run(ctx, fac, args)
}

// testRunner is the command's Runner on the simulator, on clk (the system
// clock when nil).
func testRunner(pool *ghclient.Pool, clk clock.Clock) *step.Runner {
	r := step.NewRunnerWithClock(clk)
	r.Clients, r.CallTimeout = pool, cliCallTimeout
	return r
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDispatchFromStepConfigWithKargoSecret(t *testing.T) {
	f := newCLIFixture(t, ghsim.Options{})
	cfg := writeFile(t, "step.yaml", `
uses: gha-dispatch-workflow
as: dispatch-deployment
config:
  repoURL: `+f.sim.RepoURL("myorg", "my-app")+`
  workflowFile: deploy.yml
  ref: main
  inputs:
    environment: prod
    image_tag: 1.10
    deploy_version: 1000000
  timeout: 120
`)
	secrets := writeFile(t, "secrets.yaml", `
apiVersion: v1
kind: Secret
metadata:
  name: github
  namespace: kargo-demo
  labels: {kargo.akuity.io/cred-type: git}
stringData:
  repoURL: `+f.sim.RepoURL("myorg", "my-app")+`.git
  username: kargo
  password: `+testToken+"\n")
	out := filepath.Join(t.TempDir(), "kargo-output")
	f.env["KARGO_OUTPUT"] = out
	if code := f.run(t, "dispatch", "--config", cfg, "--credentials-file", secrets, "--project", "kargo-demo"); code != 0 {
		t.Fatalf("exit %d: %s", code, f.stderr.String())
	}
	var res struct {
		RunID   int64  `json:"runID"`
		HTMLURL string `json:"htmlURL"`
	}
	if err := json.Unmarshal(f.stdout.Bytes(), &res); err != nil || res.RunID == 0 {
		t.Fatalf("stdout %q: %v", f.stdout.String(), err)
	}
	runs := f.sim.Runs(f.repo)
	if len(runs) != 1 || runs[0].ID != res.RunID {
		t.Fatalf("runs %+v", runs)
	}
	// Numbers reach GitHub exactly as written.
	if runs[0].Inputs["image_tag"] != "1.10" || runs[0].Inputs["deploy_version"] != "1000000" {
		t.Fatalf("inputs sent %v", runs[0].Inputs)
	}
	b, _ := os.ReadFile(out)
	if !strings.HasPrefix(string(b), "runID="+jsonNumber(res.RunID)+"\n") {
		t.Fatalf("KARGO_OUTPUT = %q", b)
	}
	if !strings.Contains(f.stderr.String(), "Secret kargo-demo/github") {
		t.Fatalf("stderr does not say where credentials came from: %s", f.stderr.String())
	}
}

func jsonNumber(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestDispatchFlagsOverrideConfigJSON(t *testing.T) {
	f := newCLIFixture(t, ghsim.Options{})
	f.env["GH_TOKEN"] = testToken
	code := f.run(t, "dispatch", "--config-json", `{"repoURL":"`+f.sim.RepoURL("myorg", "my-app")+`","workflowFile":"other.yml","ref":"main","inputs":{"environment":"dev"}}`,
		"--workflow-file", "deploy.yml", "--input", "environment=prod", "--input", "image_tag=1.10")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, f.stderr.String())
	}
	runs := f.sim.Runs(f.repo)
	if len(runs) != 1 || runs[0].Workflow != "deploy.yml" || runs[0].Inputs["environment"] != "prod" || runs[0].Inputs["image_tag"] != "1.10" {
		t.Fatalf("runs %+v", runs)
	}
}

func TestLegacyConfigWarnsWithTheCurrentEquivalent(t *testing.T) {
	f := newCLIFixture(t, ghsim.Options{})
	secrets := writeFile(t, "secrets.yaml", `
apiVersion: v1
kind: Secret
metadata: {name: github-credentials, namespace: kargo-demo}
stringData:
  accessToken: `+testToken+`
  baseURL: `+f.sim.URL+`/api/v3
`)
	f.stdin = "owner: myorg\nrepo: my-app\ncredentials:\n  secretName: github-credentials\nworkflowFile: deploy.yml\nref: main\n"
	if code := f.run(t, "dispatch", "--config", "-", "--credentials-file", secrets); code != 0 {
		t.Fatalf("exit %d: %s", code, f.stderr.String())
	}
	// The same warning as in Kargo: the step layer's message.
	for _, want := range []string{"the v1.8 configuration format (owner, repo, credentials) is deprecated", "use repoURL: " + f.sim.RepoURL("myorg", "my-app")} {
		if !strings.Contains(f.stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, f.stderr.String())
		}
	}
}

func TestExitCodes(t *testing.T) {
	f := newCLIFixture(t, ghsim.Options{})
	f.env["GITHUB_TOKEN"] = testToken
	repoURL := f.sim.RepoURL("myorg", "my-app")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"invalid config names every field", []string{"dispatch", "--config-json", `{"repoURL":"` + repoURL + `","timeout":500,"extra":1}`}, ExitFinal, "extra: unknown field; ref: is required (in the configuration, or --ref); timeout: must be at most 300, not 500; workflowFile: is required (in the configuration, or --workflow-file)"},
		{"missing workflow", []string{"dispatch", "--repo-url", repoURL, "--workflow-file", "gone.yml", "--ref", "main"}, ExitFinal, "404"},
		{"bad input flag", []string{"dispatch", "--repo-url", repoURL, "--workflow-file", "deploy.yml", "--ref", "main", "--input", "novalue"}, ExitFinal, "key=value"},
		{"http refused", []string{"dispatch", "--repo-url", "http://ghe.example.com/o/r", "--workflow-file", "deploy.yml", "--ref", "main"}, ExitFinal, "plain http"},
		{"rate limited", []string{"dispatch", "--repo-url", repoURL, "--workflow-file", "deploy.yml", "--ref", "main", "--timeout", "2"}, ExitTransient, "nothing was dispatched"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.code == ExitTransient {
				// A rate limit beyond the budget: GitHub did not act, so a
				// retry is safe.
				f.sim.InjectFault(&ghsim.Fault{Route: "dispatch", SecondaryRateLimit: time.Minute, Times: 1})
			}
			before := f.sim.Stats().Requests
			code := f.run(t, tt.args...)
			if code != tt.code || !strings.Contains(f.stderr.String(), tt.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, f.stderr.String(), tt.code, tt.want)
			}
			if lines := strings.Count(strings.TrimSpace(f.stderr.String()), "\n"); tt.code == ExitFinal && f.sim.Stats().Requests == before && lines != 0 {
				t.Fatalf("error is not one line: %q", f.stderr.String())
			}
			if f.stdout.Len() != 0 {
				t.Fatalf("stdout on failure: %q", f.stdout.String())
			}
		})
	}
	if st := f.sim.Stats(); st.Dispatches != 0 {
		t.Fatalf("%d runs started by failing commands", st.Dispatches)
	}
}

func TestInvalidConfigSendsNothing(t *testing.T) {
	f := newCLIFixture(t, ghsim.Options{})
	f.env["GITHUB_TOKEN"] = testToken
	code := f.run(t, "dispatch", "--repo-url", f.sim.RepoURL("myorg", "my-app"), "--workflow-file", "../../etc/passwd", "--ref", "main")
	if code != ExitFinal || f.sim.Stats().Requests != 0 {
		t.Fatalf("exit %d, %d requests", code, f.sim.Stats().Requests)
	}
}

func TestFlagParsingWithoutWork(t *testing.T) {
	var got *DispatchOptions
	cmd := NewCmdDispatch(&Factory{}, func(_ context.Context, o *DispatchOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"--repo-url", "https://github.com/o/r", "--input", "a=1", "--input", "b=x=y", "--timeout", "90", "--insecure-skip-tls-verify"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	cfg, err := got.stepConfig()
	if err != nil {
		t.Fatal(err)
	}
	inputs := cfg["inputs"].(map[string]any)
	if cfg["repoURL"] != "https://github.com/o/r" || inputs["a"] != "1" || inputs["b"] != "x=y" || cfg["timeout"] != int64(90) || cfg["insecureSkipTLSVerify"] != true {
		t.Fatalf("config %v", cfg)
	}
}

// TestBinaryEndToEnd builds the command and runs it as a user would: TLS
// trust from SSL_CERT_FILE, token from the environment.
func TestBinaryEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	f := newCLIFixture(t, ghsim.Options{Clock: clock.System{}, Answer: ghsim.AnswerNoContent, RunDelay: 200 * time.Millisecond, QueuedFor: time.Hour})
	dir := t.TempDir()
	bin := filepath.Join(dir, "kargo-gha")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/kargo-gha")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ca := writeFile(t, "ca.pem", string(f.sim.CACertPEM))
	cmd := exec.Command(bin, "dispatch", "--repo-url", f.sim.RepoURL("myorg", "my-app"), "--workflow-file", "deploy.yml", "--ref", "main", "--input", "environment=prod", "--settle", "1s")
	cmd.Env = []string{"SSL_CERT_FILE=" + ca, "GITHUB_TOKEN=" + testToken, "PATH=" + os.Getenv("PATH")}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\nstderr: %s", err, stderr.String())
	}
	var res map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || res["runID"] == nil {
		t.Fatalf("stdout %q", stdout.String())
	}
	if strings.Contains(stdout.String()+stderr.String(), testToken) {
		t.Fatal("the token was printed")
	}
	// SIGTERM while waiting: prompt stop, exit 130, a clear message.
	dispatchedRun := res["runID"].(float64)
	f.sim.ResetStats()
	cmd = exec.Command(bin, "wait", "--repo-url", f.sim.RepoURL("myorg", "my-app"), "--run-id", jsonNumber(int64(dispatchedRun)), "--poll-interval", "1s")
	cmd.Env = []string{"SSL_CERT_FILE=" + ca, "GITHUB_TOKEN=" + testToken}
	stderr.Reset()
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	sent := time.Now()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != ExitInterrupted || time.Since(sent) > 3*time.Second ||
		!strings.Contains(stderr.String(), "stopped waiting") {
		t.Fatalf("SIGTERM: %v after %s, stderr %s", err, time.Since(sent), stderr.String())
	}
	if f.sim.Stats().Dispatches != 0 {
		t.Fatal("waiting dispatched")
	}

	// Without the CA, TLS verification fails and says what to do.
	cmd = exec.Command(bin, "dispatch", "--repo-url", f.sim.RepoURL("myorg", "my-app"), "--workflow-file", "deploy.yml", "--ref", "main")
	cmd.Env = []string{"GITHUB_TOKEN=" + testToken, "SSL_CERT_FILE=/nonexistent"}
	stderr.Reset()
	cmd.Stderr = &stderr
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != ExitFinal || !strings.Contains(stderr.String(), "not trusted") {
		t.Fatalf("untrusted CA: %v, %s", err, stderr.String())
	}
}
