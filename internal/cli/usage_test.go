package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
)

// Mistakes in how the command is called exit 2, apart from failures (1),
// say what was meant where they can, point to the help, and send nothing.
func TestUsageErrorsExitTwoWithASuggestion(t *testing.T) {
	f := newCLIFixture(t, ghsim.Options{})
	f.env["GH_TOKEN"] = testToken
	repoURL := f.sim.RepoURL("myorg", "my-app")
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"mistyped flag", []string{"dispatch", "--repo-ur", repoURL}, []string{"unknown flag: --repo-ur (did you mean --repo-url?)", "see kargo-gha dispatch --help"}},
		{"flag in another case", []string{"wait", "--runid", "5"}, []string{"did you mean --run-id?", "see kargo-gha wait --help"}},
		{"unknown flag, nothing close", []string{"wait", "--zzzzzzzz"}, []string{"unknown flag: --zzzzzzzz; see kargo-gha wait --help"}},
		{"mistyped command", []string{"dispach"}, []string{`unknown command "dispach" for "kargo-gha" (did you mean dispatch?); see kargo-gha --help`}},
		{"bad duration", []string{"wait", "--timeout", "soon"}, []string{`invalid argument "soon" for "--timeout"`, "see kargo-gha wait --help"}},
		{"argument where none is taken", []string{"wait", "extra"}, []string{"see kargo-gha wait --help"}},
		{"bad log format", []string{"--log-format", "xml", "version"}, []string{"not a log format; use text or json"}},
	} {
		before := f.sim.Stats().Requests
		code := f.run(t, tc.args...)
		stderr := f.stderr.String()
		if code != ExitUsage {
			t.Errorf("%s: exit %d: %s", tc.name, code, stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%s: stderr lacks %q: %s", tc.name, w, stderr)
			}
		}
		if f.sim.Stats().Requests != before || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%s: a request was sent, or the error is not one line: %q", tc.name, stderr)
		}
	}
}

// A configuration problem on the command line names the flag typed; in a
// configuration file, the key, with the right key for a mistyped one.
func TestConfigProblemsNameFlagsOrKeys(t *testing.T) {
	f := newCLIFixture(t, ghsim.Options{})
	f.env["GH_TOKEN"] = testToken
	repoURL := f.sim.RepoURL("myorg", "my-app")
	for _, tc := range []struct {
		name   string
		args   []string
		want   string
		unwant string
	}{
		{"missing flag", []string{"dispatch", "--repo-url", repoURL, "--workflow-file", "deploy.yml"}, "(1 problem): --ref is required", "ref:"},
		{"missing in a file", []string{"dispatch", "--config-json", `{"repoURL":"` + repoURL + `","workflowFile":"deploy.yml"}`}, "ref: is required (in the configuration, or --ref)", ""},
		{"mistyped key", []string{"dispatch", "--config-json", `{"repoUrl":"` + repoURL + `","workflowFile":"deploy.yml","ref":"main"}`}, "repoUrl: unknown field; did you mean repoURL?", ""},
		{"mistyped wait key", []string{"wait", "--config-json", `{"repoURL":"` + repoURL + `","runId":5}`}, "runId: unknown field; did you mean runID?", ""},
		{"bad flag value", []string{"wait", "--repo-url", repoURL, "--run-id", "x1"}, `--run-id: "x1" is not a run ID`, "runID:"},
		{"bad value in a file", []string{"wait", "--config-json", `{"repoURL":"` + repoURL + `","runID":"x1"}`}, `runID: "x1" is not a run ID`, "--run-id:"},
		// Refused before the dispatch: after it, a run would start with
		// nobody waiting for it.
		{"bad wait flags of dispatch --wait", []string{"dispatch", "--repo-url", repoURL, "--workflow-file", "deploy.yml", "--ref", "main", "--wait", "--poll-interval", "500ms", "--expected-conclusion", "sucess"},
			`--expected-conclusion: "sucess" is not a conclusion; use one of success`, "dispatched"},
	} {
		before := f.sim.Stats().Requests
		code := f.run(t, tc.args...)
		stderr := f.stderr.String()
		if code != ExitFinal || !strings.Contains(stderr, tc.want) || (tc.unwant != "" && strings.Contains(stderr, tc.unwant)) {
			t.Errorf("%s: exit %d: %s", tc.name, code, stderr)
		}
		if f.sim.Stats().Requests != before {
			t.Errorf("%s: a request was sent for a bad configuration", tc.name)
		}
	}
}

func TestHelpVersionAndCompletion(t *testing.T) {
	f := newCLIFixture(t, ghsim.Options{})
	if code := f.run(t, "wait", "--help"); code != 0 || strings.Contains(f.stdout.String(), "1h0m0s") || strings.Count(f.stdout.String(), "(default 1h)") != 1 {
		t.Errorf("wait --help: exit %d: %s", code, f.stdout.String())
	}
	if code := f.run(t, "dispatch", "--help"); code != 0 || strings.Contains(f.stdout.String(), "toJSON") || strings.Contains(f.stdout.String(), "toJson") {
		t.Errorf("dispatch --help names a function Kargo does not have: %s", f.stdout.String())
	}
	code := f.run(t, "version")
	version := f.stdout.String()
	if code != 0 || !strings.HasPrefix(version, "kargo-gha test (commit ") || !strings.Contains(version, "commit date ") {
		t.Errorf("version: exit %d: %q", code, version)
	}
	if code := f.run(t, "--version"); code != 0 || f.stdout.String() != version {
		t.Errorf("--version: exit %d: %q, want %q", code, f.stdout.String(), version)
	}
	if code := f.run(t, "__complete", "wait", "--expected-conclusion", ""); code != 0 || !strings.Contains(f.stdout.String(), "success\nfailure\ncancelled\n") || !strings.Contains(f.stdout.String(), "action_required\n") {
		t.Errorf("completion: exit %d: %q", code, f.stdout.String())
	}
}

// --log-format json: every line on stderr is one JSON object, the error
// among them with its exit code; the token is in none of them.
func TestJSONLogs(t *testing.T) {
	f := newCLIFixture(t, ghsim.Options{})
	f.env["GH_TOKEN"] = testToken
	repoURL := f.sim.RepoURL("myorg", "my-app")
	if code := f.run(t, "--log-format", "json", "dispatch", "--repo-url", repoURL, "--workflow-file", "deploy.yml", "--ref", "main"); code != 0 {
		t.Fatalf("exit %d: %s", code, f.stderr.String())
	}
	records := jsonLines(t, f.stderr.String())
	if len(records) < 2 || !strings.HasPrefix(records[0]["msg"].(string), "dispatching deploy.yml on main") || records[0]["level"] != "INFO" {
		t.Fatalf("records %v", records)
	}
	code := f.run(t, "--log-format", "json", "wait", "--repo-url", repoURL, "--run-id", "x1")
	records = jsonLines(t, f.stderr.String())
	last := records[len(records)-1]
	if code != ExitFinal || last["level"] != "ERROR" || last["exitCode"] != float64(ExitFinal) || !strings.Contains(last["msg"].(string), "--run-id") {
		t.Fatalf("exit %d, records %v", code, records)
	}
	if strings.Contains(f.stderr.String(), testToken) {
		t.Fatal("the token is in the logs")
	}
}

func jsonLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON line: %q", line)
		}
		out = append(out, m)
	}
	return out
}
