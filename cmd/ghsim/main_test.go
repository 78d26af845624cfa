package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// lockedBuffer is the request log, written by the simulator's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startSim starts ghsim from its flags, with its files in a temporary
// directory, and returns it with what it printed on start.
func startSim(t *testing.T, args ...string) (*simulator, string, *lockedBuffer) {
	t.Helper()
	dir := t.TempDir()
	args = append([]string{"-addr", "127.0.0.1:0", "-ca-file", filepath.Join(dir, "ca.pem"), "-app-key-file", filepath.Join(dir, "app-key.pem")}, args...)
	log := &lockedBuffer{}
	cfg, err := parseFlags(args, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	sim, err := start(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	var out bytes.Buffer
	printUsage(&out, sim)
	return sim, out.String(), log
}

// kargoGHA builds the command once for the tests that run it.
var kargoGHA = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "ghsim-test-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "kargo-gha")
	if out, err := exec.Command("go", "build", "-o", bin, "../kargo-gha").CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// printedCommand is the command printed on the line after the one
// starting with heading, RUN_ID replaced.
func printedCommand(t *testing.T, usage, heading string, runID int64) string {
	t.Helper()
	lines := strings.Split(usage, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, heading) && i+1 < len(lines) {
			return strings.ReplaceAll(strings.TrimSpace(lines[i+1]), "RUN_ID", fmt.Sprint(runID))
		}
	}
	t.Fatalf("no %q in the usage:\n%s", heading, usage)
	return ""
}

// runPrinted runs a printed command line in a shell, kargo-gha on PATH.
func runPrinted(t *testing.T, line string) (stdout string, err error) {
	t.Helper()
	bin, err := kargoGHA()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", line)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	if err != nil {
		t.Logf("%s\nstderr: %s", line, errOut.String())
	}
	return out.String(), err
}

// TestByHand does what docs/ghsim.md tells a user: start ghsim with a
// protected environment, paste the printed App command (a real JWT, a real
// token exchange, a dispatch over TLS checked against the written CA), see
// the run wait for approval, approve it, and paste the printed wait.
func TestByHand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds kargo-gha")
	}
	sim, usage, log := startSim(t, "-environment", "production", "-run-delay", "0", "-queued-for", "0", "-run-for", "0")
	if info, err := os.Stat(sim.AppKeyFile); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("the App's private key file: %v %v, want mode 0600", info, err)
	}
	for _, want := range []string{"GitHub App   ID 1001, installation 2002 on example/app, private key " + sim.AppKeyFile, "environment  production", "faults       none"} {
		if !strings.Contains(usage, want) {
			t.Errorf("the usage lacks %q:\n%s", want, usage)
		}
	}

	out, err := runPrinted(t, printedCommand(t, usage, "Dispatch as the GitHub App", 0))
	if err != nil {
		t.Fatalf("the printed App dispatch: %v", err)
	}
	var dispatched struct{ RunID int64 }
	if err := json.Unmarshal([]byte(out), &dispatched); err != nil || dispatched.RunID == 0 {
		t.Fatalf("dispatch printed %q: %v", out, err)
	}
	runs := sim.Runs(sim.repo)
	if st := sim.Stats(); st.TokenExchanges != 1 || st.Dispatches != 1 || len(runs) != 1 || runs[0].ID != dispatched.RunID || runs[0].Actor != "sim-app[bot]" {
		t.Fatalf("token exchanges %d, dispatches %d, runs %+v; want one run %d by the App", st.TokenExchanges, st.Dispatches, runs, dispatched.RunID)
	}

	api := apiClient(sim)
	runPath := fmt.Sprintf("/repos/example/app/actions/runs/%d", dispatched.RunID)
	if st := api.status(t, runPath); st != "waiting" {
		t.Fatalf("before approval the run is %s, want waiting", st)
	}
	// The body of the printed curl command, to the printed endpoint.
	approve := printedCommand(t, usage, "Approve a waiting run", dispatched.RunID)
	endpoint := ""
	for _, f := range strings.Fields(approve) {
		if strings.HasPrefix(f, "https://") {
			endpoint = f
		}
	}
	body := approve[strings.Index(approve, "-d '")+4 : len(approve)-1]
	if code := api.post(t, endpoint, body); code != http.StatusOK {
		t.Fatalf("approval: %d", code)
	}
	// The timeout only bounds a failing test: the approved run is done.
	out, err = runPrinted(t, printedCommand(t, usage, "Wait for the run", dispatched.RunID)+" --timeout 30s")
	if err != nil || !strings.Contains(out, `"conclusion":"success"`) {
		t.Fatalf("the printed wait: %v: %s", err, out)
	}

	l := log.String()
	if !strings.Contains(l, "POST /app/installations/2002/access_tokens → 201") || !strings.Contains(l, "/dispatches → 200") {
		t.Errorf("the request log lacks the token exchange or the dispatch:\n%s", l)
	}
	if strings.Contains(l, "ghs_") || strings.Contains(l, sim.cfg.Token) || strings.Contains(l, "Bearer") {
		t.Errorf("the request log shows a credential:\n%s", l)
	}
}

// TestFaultFlags: each fault flag makes the simulator misbehave as it says.
func TestFaultFlags(t *testing.T) {
	dispatch := `{"ref":"main","inputs":{},"return_run_details":true}`
	const dispatchPath = "/repos/example/app/actions/workflows/deploy.yml/dispatches"
	t.Run("fault-5xx-rate", func(t *testing.T) {
		sim, _, _ := startSim(t, "-quiet", "-no-app", "-fault-5xx-rate", "1")
		resp := apiClient(sim).do(t, "GET", "/repos/example/app/actions/runs", "")
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("%d, want 502", resp.StatusCode)
		}
		if len(sim.Runs(sim.repo)) != 0 {
			t.Error("a run was created")
		}
	})
	t.Run("secondary-rate-limit-rate", func(t *testing.T) {
		sim, usage, _ := startSim(t, "-quiet", "-secondary-rate-limit-rate", "1", "-secondary-retry-after", "30s")
		resp := apiClient(sim).do(t, "POST", dispatchPath, dispatch)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Retry-After") != "30" || !strings.Contains(string(b), "secondary rate limit") {
			t.Errorf("%d Retry-After %q %s, want GitHub's secondary rate limit", resp.StatusCode, resp.Header.Get("Retry-After"), b)
		}
		if !strings.Contains(usage, "100% of requests secondary-rate-limited (Retry-After 30s)") {
			t.Errorf("usage: %s", usage)
		}
	})
	t.Run("lost-answer-rate", func(t *testing.T) {
		sim, _, log := startSim(t, "-lost-answer-rate", "1")
		c := apiClient(sim)
		req, _ := http.NewRequest("POST", sim.URL+"/api/v3"+dispatchPath, strings.NewReader(dispatch))
		req.Header.Set("Authorization", "Bearer "+sim.cfg.Token)
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("answered %d, want the connection dropped", resp.StatusCode)
		}
		if n := len(sim.Runs(sim.repo)); n != 1 {
			t.Errorf("%d runs, want the one GitHub created before the answer was lost", n)
		}
		if !strings.Contains(log.String(), "/dispatches → 0  (connection dropped)") {
			t.Errorf("the log does not show the lost answer:\n%s", log.String())
		}
	})
	t.Run("read-lag", func(t *testing.T) {
		sim, _, _ := startSim(t, "-quiet", "-read-lag", "1h", "-run-delay", "0")
		c := apiClient(sim)
		resp := c.do(t, "POST", dispatchPath, dispatch)
		var answer struct {
			ID int64 `json:"workflow_run_id"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || answer.ID == 0 {
			t.Fatalf("dispatch: %d %v", resp.StatusCode, err)
		}
		if got := c.do(t, "GET", fmt.Sprintf("/repos/example/app/actions/runs/%d", answer.ID), "").StatusCode; got != http.StatusNotFound {
			t.Errorf("the run just named: %d, want 404 during the read lag", got)
		}
	})
}

// TestBadFlags: a bad flag is named, with what it takes, before anything
// starts (exit 2).
func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-fault-5xx-rate", "1.5"}, "-fault-5xx-rate 1.5: must be a share from 0 to 1"},
		{[]string{"-lost-answer-rate", "-0.1"}, "-lost-answer-rate -0.1: must be a share"},
		{[]string{"-secondary-rate-limit-rate", "NaN"}, "-secondary-rate-limit-rate NaN"},
		{[]string{"-secondary-rate-limit-rate", "0.5", "-secondary-retry-after", "0s"}, "-secondary-retry-after 0s: must be at least 1s"},
		{[]string{"-read-lag", "-1s"}, "-read-lag -1s: must not be negative"},
		{[]string{"-repo", "noslash"}, `-repo "noslash": must be OWNER/NAME`},
		{[]string{"-answer", "maybe"}, `-answer "maybe"`},
		{[]string{"-environment", "prod/eu"}, `-environment "prod/eu"`},
		{[]string{"-app-id", "0"}, "-app-id and -installation-id must be positive"},
		{[]string{"-api-versions", "2026-03-10,2030-01-01"}, `-api-versions "2026-03-10,2030-01-01": each must be`},
	} {
		_, err := parseFlags(tc.args, io.Discard)
		var usage usageError
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, &usage) {
			t.Errorf("%v: %v, want a usage error %q", tc.args, err, tc.want)
		}
	}
}

// -api-versions makes a host that serves only the versions named: a dispatch
// tells which one it took.
func TestAPIVersionsFlag(t *testing.T) {
	c, err := parseFlags([]string{"-api-versions", "2026-03-10"}, io.Discard)
	if err != nil || len(c.APIVersions) != 1 || c.APIVersions[0] != "2026-03-10" {
		t.Fatalf("-api-versions 2026-03-10: %+v, %v", c.APIVersions, err)
	}
	if c, err := parseFlags(nil, io.Discard); err != nil || c.APIVersions != nil {
		t.Fatalf("default: %+v, %v; want nil (both versions)", c.APIVersions, err)
	}
}

// api is an HTTP client trusting the simulator's CA, as the written CA file
// makes kargo-gha trust it.
type api struct {
	*http.Client
	sim *simulator
}

func apiClient(sim *simulator) api {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: sim.RootCAs()}}
	return api{Client: &http.Client{Transport: tr}, sim: sim}
}

func (c api) do(t *testing.T, method, path, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), method, c.sim.URL+"/api/v3"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+c.sim.cfg.Token)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func (c api) status(t *testing.T, path string) string {
	t.Helper()
	var run struct {
		Status string `json:"status"`
	}
	if err := json.NewDecoder(c.do(t, "GET", path, "").Body).Decode(&run); err != nil {
		t.Fatal(err)
	}
	return run.Status
}

func (c api) post(t *testing.T, url, body string) int {
	t.Helper()
	return c.do(t, "POST", strings.TrimPrefix(url, c.sim.URL+"/api/v3"), body).StatusCode
}

// TestAppKeyFile: the App's key goes beside the CA unless told otherwise
// (so a script's temporary directory holds both), and -no-app makes none.
func TestAppKeyFile(t *testing.T) {
	c, err := parseFlags([]string{"-ca-file", "/tmp/trial/ca.pem"}, io.Discard)
	if err != nil || c.AppKeyFile != "/tmp/trial/ghsim-app-key.pem" {
		t.Errorf("default key file %q (%v), want beside the CA", c.AppKeyFile, err)
	}
	sim, usage, _ := startSim(t, "-quiet", "-no-app")
	if sim.AppKeyFile != "" || strings.Contains(usage, "GitHub App") {
		t.Errorf("-no-app: key %q, usage:\n%s", sim.AppKeyFile, usage)
	}
}
