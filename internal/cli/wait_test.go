package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/pkg/step"
)

func (f *cliFixture) dispatchRun(t *testing.T) int64 {
	t.Helper()
	if code := f.run(t, "dispatch", "--repo-url", f.sim.RepoURL("myorg", "my-app"), "--workflow-file", "deploy.yml", "--ref", "main"); code != 0 {
		t.Fatalf("dispatch: exit %d: %s", code, f.stderr.String())
	}
	var out struct{ RunID int64 }
	_ = json.Unmarshal(f.stdout.Bytes(), &out)
	return out.RunID
}

func TestWaitCommand(t *testing.T) {
	f := newCLIFixture(t, ghsim.Options{QueuedFor: 100 * time.Millisecond, RunFor: 100 * time.Millisecond})
	f.env["GITHUB_TOKEN"] = testToken
	id := f.dispatchRun(t)
	out := filepath.Join(t.TempDir(), "out")
	f.env["KARGO_OUTPUT"] = out
	// The run ID as a string of digits, as expressions often yield it.
	cfg := `{"repoURL":"` + f.sim.RepoURL("myorg", "my-app") + `","runID":"` + jsonNumber(id) + `","expectedConclusion":"success","pollInterval":"1s"}`
	if code := f.run(t, "wait", "--config-json", cfg, "--poll-interval", "1s"); code != 0 {
		t.Fatalf("exit %d: %s", code, f.stderr.String())
	}
	var res map[string]any
	if err := json.Unmarshal(f.stdout.Bytes(), &res); err != nil || res["conclusion"] != "success" || res["runID"] != float64(id) || res["htmlURL"] == "" {
		t.Fatalf("stdout %q", f.stdout.String())
	}
	if b, _ := os.ReadFile(out); !strings.Contains(string(b), "\nconclusion=success\n") || !strings.HasPrefix(string(b), "runID="+jsonNumber(id)+"\n") {
		t.Fatalf("KARGO_OUTPUT %q", b)
	}
	// Not a terminal: plain lines, one per change, then the outcome.
	stderr := f.stderr.String()
	if strings.Count(stderr, "is queued") != 1 || !strings.Contains(stderr, "run "+jsonNumber(id)+" completed with conclusion success") || strings.Contains(stderr, "\r") {
		t.Fatalf("stderr %q", stderr)
	}
}

func TestWaitCommandMismatchAndBadConfig(t *testing.T) {
	f := newCLIFixture(t, ghsim.Options{})
	f.env["GITHUB_TOKEN"] = testToken
	id := f.dispatchRun(t)
	code := f.run(t, "wait", "--repo-url", f.sim.RepoURL("myorg", "my-app"), "--run-id", jsonNumber(id), "--expected-conclusion", "failure", "--poll-interval", "1s")
	if code != ExitFinal || !strings.Contains(f.stderr.String(), `finished "success" (expected "failure")`) {
		t.Fatalf("exit %d: %s", code, f.stderr.String())
	}
	before := f.sim.Stats().Requests
	code = f.run(t, "wait", "--repo-url", f.sim.RepoURL("myorg", "my-app"), "--run-id", "12x", "--expected-conclusion", "succeeded", "--poll-interval", "500ms")
	for _, want := range []string{"--run-id: \"12x\" is not a run ID", "--expected-conclusion: \"succeeded\" is not a conclusion; use one of success, failure", "--poll-interval: 500ms is shorter than the minimum of 1s"} {
		if !strings.Contains(f.stderr.String(), want) {
			t.Errorf("stderr lacks %q: %s", want, f.stderr.String())
		}
	}
	if code != ExitFinal || f.sim.Stats().Requests != before {
		t.Fatalf("exit %d, requests sent for a bad config", code)
	}
	code = f.run(t, "wait", "--repo-url", f.sim.RepoURL("myorg", "my-app"), "--run-id", "4242", "--poll-interval", "1s")
	if code != ExitFinal || !strings.Contains(f.stderr.String(), "run 4242 does not exist") {
		t.Fatalf("exit %d: %s", code, f.stderr.String())
	}
}

func TestWaitLegacyFormat(t *testing.T) {
	f := newCLIFixture(t, ghsim.Options{})
	f.env["GITHUB_TOKEN"] = testToken
	id := f.dispatchRun(t)
	delete(f.env, "GITHUB_TOKEN")
	secrets := writeFile(t, "s.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: gh}\nstringData:\n  accessToken: "+testToken+"\n  baseURL: "+f.sim.URL+"/api/v3\n")
	f.stdin = "owner: myorg\nrepo: my-app\ncredentials: {secretName: gh}\nrunID: " + jsonNumber(id) + "\nexpectedConclusion: success\n"
	if code := f.run(t, "wait", "--config", "-", "--credentials-file", secrets, "--poll-interval", "1s"); code != 0 {
		t.Fatalf("exit %d: %s", code, f.stderr.String())
	}
	if !strings.Contains(f.stderr.String(), "v1.8 configuration format") || !strings.Contains(f.stderr.String(), "repoURL: "+f.sim.RepoURL("myorg", "my-app")) {
		t.Fatalf("no deprecation warning: %s", f.stderr.String())
	}
}

func TestDispatchAndWait(t *testing.T) {
	f := newCLIFixture(t, ghsim.Options{Answer: ghsim.AnswerNoContent, RunDelay: 200 * time.Millisecond, QueuedFor: 100 * time.Millisecond, RunFor: 200 * time.Millisecond})
	f.env["GITHUB_TOKEN"] = testToken
	code := f.run(t, "dispatch", "--repo-url", f.sim.RepoURL("myorg", "my-app"), "--workflow-file", "deploy.yml", "--ref", "main",
		"--wait", "--expected-conclusion", "success", "--poll-interval", "1s")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, f.stderr.String())
	}
	var res map[string]any
	if err := json.Unmarshal(f.stdout.Bytes(), &res); err != nil || res["runID"] == nil || res["conclusion"] != "success" || res["htmlURL"] == nil {
		t.Fatalf("stdout %q", f.stdout.String())
	}
	if f.sim.Stats().Dispatches != 1 {
		t.Fatal("more than one dispatch")
	}
}

func TestInterruptWhileWaiting(t *testing.T) {
	f := newCLIFixture(t, ghsim.Options{QueuedFor: time.Hour})
	f.env["GITHUB_TOKEN"] = testToken
	ctx, cancel := context.WithCancelCause(context.Background())
	time.AfterFunc(300*time.Millisecond, func() { cancel(ErrInterrupted) })
	start := time.Now()
	code := f.runCtx(t, ctx, "dispatch", "--repo-url", f.sim.RepoURL("myorg", "my-app"), "--workflow-file", "deploy.yml", "--ref", "main", "--wait", "--poll-interval", "1s")
	if code != ExitInterrupted || !strings.Contains(f.stderr.String(), "stopped waiting") || !strings.Contains(f.stderr.String(), "do not dispatch again") {
		t.Fatalf("exit %d: %s", code, f.stderr.String())
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("took %s to stop", time.Since(start))
	}
	// The run ID is still printed, so a script can wait for it later.
	var res map[string]any
	if err := json.Unmarshal(f.stdout.Bytes(), &res); err != nil || res["runID"] == nil || res["conclusion"] != nil {
		t.Fatalf("stdout %q", f.stdout.String())
	}
	if f.sim.Stats().Dispatches != 1 {
		t.Fatal("interruption dispatched again")
	}
	// Interrupting a plain wait dispatches nothing at all.
	id := int64(res["runID"].(float64))
	ctx, cancel = context.WithCancelCause(context.Background())
	time.AfterFunc(300*time.Millisecond, func() { cancel(ErrInterrupted) })
	code = f.runCtx(t, ctx, "wait", "--repo-url", f.sim.RepoURL("myorg", "my-app"), "--run-id", jsonNumber(id), "--poll-interval", "1s")
	if code != ExitInterrupted || f.sim.Stats().Dispatches != 1 || !strings.Contains(f.stderr.String(), "interrupted") {
		t.Fatalf("exit %d: %s", code, f.stderr.String())
	}
}

func TestStatusPrinterUpdatesOneLineOnATerminal(t *testing.T) {
	running := func(msg string) step.Result { return step.Result{Status: step.StatusRunning, Message: msg} }
	for _, tt := range []struct {
		name string
		tty  bool
		term string
		want func(string) bool
	}{
		{"terminal", true, "xterm", func(out string) bool {
			return strings.Count(out, "\r\033[K") == 4 && strings.HasSuffix(out, "run 7 is in_progress\n") && strings.Count(out, "\n") == 1
		}},
		{"dumb terminal", true, "dumb", func(out string) bool {
			return !strings.Contains(out, "\033") && !strings.Contains(out, "\r") && strings.Count(out, "\n") == 2
		}},
		{"log", false, "", func(out string) bool { return !strings.Contains(out, "\033") && strings.Count(out, "\n") == 2 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var buf strings.Builder
			p := &statusPrinter{w: &buf, tty: liveUpdates(tt.tty, tt.term), start: time.Now()}
			for _, m := range []string{"run 7 is queued", "run 7 is queued", "run 7 is in_progress", "run 7 is in_progress"} {
				p.show(running(m))
			}
			p.done()
			if out := buf.String(); !tt.want(out) {
				t.Fatalf("output %q", out)
			}
		})
	}
}
