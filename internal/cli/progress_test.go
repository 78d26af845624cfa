package cli

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/pkg/step"
)

// nonErrorLines are the progress lines of stderr.
func nonErrorLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSuffix(stderr, "\n"), "\n") {
		if !strings.HasPrefix(l, "error:") {
			out = append(out, l)
		}
	}
	return out
}

// A dispatch retried after a rate limit says "dispatching …" once, and
// each of its lines once.
func TestDispatchRetryShowsEachMessageOnce(t *testing.T) {
	f := newCLIFixture(t, ghsim.Options{})
	f.env["GH_TOKEN"] = testToken
	f.sim.InjectFault(&ghsim.Fault{Route: "dispatch", SecondaryRateLimit: time.Second, Times: 1})
	if code := f.run(t, "dispatch", "--repo-url", f.sim.RepoURL("myorg", "my-app"), "--workflow-file", "deploy.yml", "--ref", "main"); code != 0 {
		t.Fatalf("exit %d: %s", code, f.stderr.String())
	}
	stderr := f.stderr.String()
	if strings.Count(stderr, "dispatching deploy.yml on main in") != 1 || strings.Count(stderr, "trying again in") != 1 {
		t.Fatalf("stderr:\n%s", stderr)
	}
	assertDistinct(t, nonErrorLines(stderr))
}

// A wait's retry message is shown once, with the time waited, not once
// plain and again as a status line.
func TestWaitRetryShowsEachMessageOnce(t *testing.T) {
	f := newCLIFixture(t, ghsim.Options{QueuedFor: time.Hour})
	f.env["GH_TOKEN"] = testToken
	id := f.sim.CreateRun(f.repo, "deploy.yml", "main", "octocat", nil, 0)
	f.sim.InjectFault(&ghsim.Fault{Route: "get-run", PrimaryRateLimit: true})
	code := f.run(t, "wait", "--repo-url", f.sim.RepoURL("myorg", "my-app"), "--run-id", jsonNumber(id), "--poll-interval", "1s", "--timeout", "2s")
	lines := nonErrorLines(f.stderr.String())
	if code != ExitTransient || len(lines) != 1 || !strings.Contains(lines[0], "checking run "+jsonNumber(id)+" again in") || !regexp.MustCompile(`^\[\d+s\] `).MatchString(lines[0]) {
		t.Fatalf("exit %d, stderr:\n%s", code, f.stderr.String())
	}
}

// The printer, on a terminal and in a log, as the wait drives it: a logged
// retry line, then the same text as the Running message.
func TestStatusPrinterShowsEachMessageOnce(t *testing.T) {
	running := func(msg string) step.Result { return step.Result{Status: step.StatusRunning, Message: msg} }
	retry1 := "GitHub failed to answer (502); checking run 7 again in 1s; the run goes on"
	retry2 := "GitHub failed to answer (502); checking run 7 again in 2s; the run goes on"
	for _, tty := range []bool{true, false} {
		t.Run(map[bool]string{true: "terminal", false: "log"}[tty], func(t *testing.T) {
			var buf strings.Builder
			p := &statusPrinter{w: &buf, tty: tty, elapsed: true, start: time.Now()}
			p.logf("%s", retry1)
			p.show(running(retry1))
			p.show(running("run 7 is queued"))
			p.show(running("run 7 is queued"))
			p.logf("%s", retry2)
			p.show(running(retry2))
			p.logf("%s", retry2) // the step logs it again: shown already
			p.show(running("run 7 is in_progress"))
			p.done()
			out := buf.String()
			for _, m := range []string{retry1, retry2, "run 7 is in_progress"} {
				if n := strings.Count(out, m); n != 1 {
					t.Errorf("%q shown %d times in %q", m, n, out)
				}
			}
			for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
				if !regexp.MustCompile(`^(\r\x1b\[K)?\[\d+s\] `).MatchString(l) {
					t.Errorf("line without the time waited: %q", l)
				}
			}
			if !tty && strings.Count(out, "run 7 is queued") != 1 {
				t.Errorf("a log repeats a status: %q", out)
			}
		})
	}
}

func assertDistinct(t *testing.T, lines []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, l := range lines {
		if seen[l] {
			t.Errorf("shown twice: %q", l)
		}
		seen[l] = true
	}
}
