package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/internal/safetext"
)

// binSim is a simulator for the built command: its CA in a file, and a
// channel closed at the first run listing, which the dispatch only sends
// once GitHub answered its POST.
type binSim struct {
	sim    *ghsim.Server
	repo   *ghsim.Repo
	ca     string
	listed chan struct{}
}

func startBinSim(t *testing.T, opts ghsim.Options) *binSim {
	t.Helper()
	b := &binSim{listed: make(chan struct{})}
	var once sync.Once
	opts.Observe = func(e ghsim.Exchange) {
		if e.Route == "list-runs" {
			once.Do(func() { close(b.listed) })
		}
	}
	sim, err := ghsim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	b.sim = sim
	b.repo = sim.AddRepo("myorg", "my-app")
	sim.AddWorkflow(b.repo, ghsim.Workflow{File: "deploy.yml", Inputs: []string{"environment"}})
	sim.AddToken(testToken, "octocat", false)
	b.ca = writeFile(t, "ca.pem", string(sim.CACertPEM))
	return b
}

// command is the built command against the simulator, killed if it
// outlives the test's bound.
func (b *binSim) command(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, builtCommand(t), args...)
	cmd.Env = []string{"SSL_CERT_FILE=" + b.ca, "GH_TOKEN=" + testToken}
	return cmd
}

func (b *binSim) dispatchArgs(extra ...string) []string {
	return append([]string{"dispatch", "--repo-url", b.sim.RepoURL("myorg", "my-app"), "--workflow-file", "deploy.yml", "--ref", "main"}, extra...)
}

// closedPipe is the write end of a pipe whose reader is gone.
func closedPipe(t *testing.T) *os.File {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	t.Cleanup(func() { w.Close() })
	return w
}

func devFull(t *testing.T) *os.File {
	t.Helper()
	fh, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no /dev/full:", err)
	}
	t.Cleanup(func() { fh.Close() })
	return fh
}

// errorLines are the lines of stderr that begin "error:".
func errorLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "error:") {
			out = append(out, l)
		}
	}
	return out
}

// A dispatch whose output cannot be written still names its run, on
// stderr, and says not to dispatch again; SIGPIPE does not kill it.
func TestLostStdoutNamesTheRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	for _, tt := range []struct {
		name     string
		stdout   func(*testing.T) *os.File
		noStderr bool
		want     string
	}{
		{"stdout is /dev/full", devFull, false, "no space left on device"},
		{"stdout is a closed pipe", closedPipe, false, "broken pipe"},
		{"stdout and stderr are closed pipes", closedPipe, true, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := startBinSim(t, ghsim.Options{})
			kout := filepath.Join(t.TempDir(), "kargo-output")
			cmd := b.command(t, b.dispatchArgs()...)
			cmd.Env = append(cmd.Env, "KARGO_OUTPUT="+kout)
			var stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = tt.stdout(t), &stderr
			if tt.noStderr {
				cmd.Stderr = closedPipe(t)
			}
			err := cmd.Run()
			runs := b.sim.Runs(b.repo)
			if len(runs) != 1 {
				t.Fatalf("%d runs", len(runs))
			}
			if code := cmd.ProcessState.ExitCode(); code != ExitFinal {
				t.Fatalf("exit %d (%v), want %d; stderr: %s", code, err, ExitFinal, stderr.String())
			}
			// KARGO_OUTPUT, the other place the output goes, still has it.
			id := strconv.FormatInt(runs[0].ID, 10)
			if got, _ := os.ReadFile(kout); !strings.HasPrefix(string(got), "runID="+id+"\n") {
				t.Errorf("KARGO_OUTPUT %q", got)
			}
			if tt.noStderr {
				return // nothing more can be said
			}
			lines := errorLines(stderr.String())
			if len(lines) != 1 {
				t.Fatalf("want one error line, stderr:\n%s", stderr.String())
			}
			for _, w := range []string{"stdout", tt.want, "run " + id, "/actions/runs/" + id, "do not dispatch again"} {
				if !strings.Contains(lines[0], w) {
					t.Errorf("error line lacks %q: %s", w, lines[0])
				}
			}
		})
	}
}

// A wait whose output cannot be written names the run's result.
func TestLostStdoutOfAWaitNamesTheResult(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	b := startBinSim(t, ghsim.Options{QueuedFor: 50 * time.Millisecond, RunFor: 50 * time.Millisecond})
	id := b.sim.CreateRun(b.repo, "deploy.yml", "main", "octocat", nil, 0)
	cmd := b.command(t, "wait", "--repo-url", b.sim.RepoURL("myorg", "my-app"), "--run-id", jsonNumber(id), "--poll-interval", "1s")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = devFull(t), &stderr
	_ = cmd.Run()
	lines := errorLines(stderr.String())
	if code := cmd.ProcessState.ExitCode(); code != ExitFinal || len(lines) != 1 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	for _, w := range []string{"no space left on device", "run " + jsonNumber(id), "completed with conclusion success", `"conclusion":"success"`} {
		if !strings.Contains(lines[0], w) {
			t.Errorf("error line lacks %q: %s", w, lines[0])
		}
	}
	if strings.Contains(lines[0], "dispatch") {
		t.Errorf("a wait speaks of dispatching: %s", lines[0])
	}
}

// SIGHUP and SIGQUIT after the POST stop the command as SIGTERM does: exit
// 130 and a message that says where to look for the run, no goroutine dump.
func TestStopSignalsAfterTheDispatchSayWhereToLook(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			b := startBinSim(t, ghsim.Options{Answer: ghsim.AnswerNoContent, RunDelay: time.Hour})
			cmd := b.command(t, b.dispatchArgs("--timeout", "60")...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, b.listed, cmd)
			_ = cmd.Process.Signal(sig)
			_ = cmd.Wait()
			name := map[syscall.Signal]string{syscall.SIGHUP: "SIGHUP", syscall.SIGQUIT: "SIGQUIT", syscall.SIGTERM: "SIGTERM", syscall.SIGINT: "SIGINT"}[sig]
			lines := errorLines(stderr.String())
			if code := cmd.ProcessState.ExitCode(); code != ExitInterrupted || len(lines) != 1 {
				t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
			}
			// The signal may land between listings or during one: the step
			// words the two differently, both name the runs page.
			for _, w := range []string{"interrupted by " + name, "/myorg/my-app/actions/workflows/deploy.yml", "before dispatching again"} {
				if !strings.Contains(lines[0], w) {
					t.Errorf("error line lacks %q: %s", w, lines[0])
				}
			}
			if strings.Contains(stderr.String(), "goroutine ") {
				t.Errorf("a goroutine dump:\n%.300s", stderr.String())
			}
			if n := b.sim.Stats().Dispatches; n != 1 {
				t.Errorf("%d dispatches", n)
			}
		})
	}
}

// Under nohup (SIGHUP ignored when the command starts) SIGHUP stays
// ignored; SIGTERM still stops it.
func TestInheritedIgnoredSIGHUPStaysIgnored(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	b := startBinSim(t, ghsim.Options{Answer: ghsim.AnswerNoContent, RunDelay: time.Hour})
	script := `trap '' HUP; exec "$0" "$@"`
	cmd := b.command(t, b.dispatchArgs("--timeout", "60")...)
	cmd.Path, cmd.Args = sh, append([]string{"sh", "-c", script}, cmd.Args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, b.listed, cmd)
	_ = cmd.Process.Signal(syscall.SIGHUP)
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	// The command lists runs every few hundred milliseconds while it
	// looks: two more listings after the SIGHUP show it alive.
	before := b.sim.Stats().ByRoute["list-runs"]
	for b.sim.Stats().ByRoute["list-runs"] < before+2 {
		select {
		case <-exited:
			t.Fatalf("SIGHUP stopped it: exit %d, stderr:\n%s", cmd.ProcessState.ExitCode(), stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	<-exited
	if code := cmd.ProcessState.ExitCode(); code != ExitInterrupted || !strings.Contains(stderr.String(), "interrupted by SIGTERM") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
}

// waitFor waits until ch closes, or fails if cmd ends first.
func waitFor(t *testing.T, ch <-chan struct{}, cmd *exec.Cmd) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the command never listed runs")
	}
}

// runBounded runs the command in-process, failing instead of hanging.
func (f *cliFixture) runBounded(t *testing.T, args ...string) int {
	t.Helper()
	done := make(chan int, 1)
	go func() { done <- f.run(t, args...) }()
	select {
	case code := <-done:
		return code
	case <-time.After(15 * time.Second):
		t.Fatal("the command blocked")
		return 0
	}
}

// A KARGO_OUTPUT that is a FIFO (read or not) is refused at once, before
// any request: opening one nobody reads would block forever.
func TestKargoOutputFIFOIsRefusedWithoutBlocking(t *testing.T) {
	f := newCLIFixture(t, ghsim.Options{})
	f.env["GH_TOKEN"] = testToken
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("mkfifo:", err)
	}
	args := []string{"dispatch", "--repo-url", f.sim.RepoURL("myorg", "my-app"), "--workflow-file", "deploy.yml", "--ref", "main"}
	f.env[EnvKargoOutput] = fifo
	check := func(t *testing.T) {
		t.Helper()
		code := f.runBounded(t, args...)
		stderr := f.stderr.String()
		if code != ExitFinal || !strings.Contains(stderr, "KARGO_OUTPUT") || !strings.Contains(stderr, "nothing was done") || !strings.Contains(stderr, "named pipe") {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		if n := f.sim.Stats().Requests; n != 0 {
			t.Fatalf("%d requests", n)
		}
	}
	t.Run("nobody reads it", check)
	t.Run("someone reads it", func(t *testing.T) {
		r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		check(t)
	})
	t.Run("the final write", func(t *testing.T) {
		done := make(chan error, 1)
		go func() { done <- appendTo(fifo, "runID=1\n") }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "named pipe") {
				t.Fatalf("appendTo a FIFO: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("appendTo blocked on a FIFO")
		}
	})
	t.Run("/dev/null is fine", func(t *testing.T) {
		f.env[EnvKargoOutput] = os.DevNull
		if code := f.runBounded(t, args...); code != 0 {
			t.Fatalf("exit %d: %s", code, f.stderr.String())
		}
	})
}

// Output values pass the same cleaning as messages, in both places.
func TestOutputValuesAreCleaned(t *testing.T) {
	const secret = "s3cr3t-output-value-0123"
	safetext.Register(secret)
	kout := filepath.Join(t.TempDir(), "kargo-output")
	var stdout bytes.Buffer
	fac := &Factory{IO: IOStreams{Out: &stdout, ErrOut: io.Discard}, Getenv: func(k string) string { return map[string]string{EnvKargoOutput: kout}[k] }}
	o, err := newOutput(fac)
	if err != nil {
		t.Fatal(err)
	}
	o.set("runID", int64(42))
	o.set("conclusion", "fail\x1b[31mure\x00 "+secret+"\r\nrunID=666")
	o.set("failedJobs", []any{map[string]any{"name": "build \x1b]0;title\x07" + secret, "stepNumber": int64(3)}})
	if err := o.emit(); err != nil {
		t.Fatal(err)
	}
	var got struct {
		RunID      int64
		Conclusion string
		FailedJobs []struct {
			Name       string
			StepNumber int64
		}
	}
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil || got.RunID != 42 || len(got.FailedJobs) != 1 || got.FailedJobs[0].StepNumber != 3 {
		t.Fatalf("stdout %q: %v", stdout.String(), err)
	}
	file, _ := os.ReadFile(kout)
	for where, s := range map[string]string{"stdout conclusion": got.Conclusion, "stdout job name": got.FailedJobs[0].Name, "KARGO_OUTPUT": string(file)} {
		if strings.ContainsAny(s, "\x1b\x00\x07\r") || strings.Contains(s, secret) || !strings.Contains(s, safetext.Redacted) {
			t.Errorf("%s not cleaned: %q", where, s)
		}
	}
	lines := strings.Split(strings.TrimSuffix(string(file), "\n"), "\n")
	if len(lines) != 3 || lines[0] != "runID=42" || !strings.HasPrefix(lines[1], "conclusion=failure ") || !strings.HasPrefix(lines[2], "failedJobs=[{") {
		t.Fatalf("KARGO_OUTPUT lines %q", lines)
	}
}

// outputLine never lets a value end its heredoc early, whichever line
// break a reader splits on.
func TestOutputLineCannotBeBroken(t *testing.T) {
	breaks := regexp.MustCompile(`\r\n|\r|\n`)
	for _, v := range []string{"plain", "", "a\nb", "a\rb", "a\r\nb\r\n", "KARGO_GHA_EOF", "x\nKARGO_GHA_EOF\ny", "x\r\nKARGO_GHA_EOF_\rKARGO_GHA_EOF__\n", "key=v\nother=x"} {
		got := outputLine("conclusion", v)
		if !strings.ContainsAny(v, "\r\n") {
			if got != "conclusion="+v+"\n" {
				t.Errorf("%q: %q", v, got)
			}
			continue
		}
		head, rest, _ := strings.Cut(got, "\n")
		delim, ok := strings.CutPrefix(head, "conclusion<<")
		if !ok || delim == "" {
			t.Fatalf("%q: header %q", v, head)
		}
		if rest != v+"\n"+delim+"\n" {
			t.Errorf("%q: body %q", v, rest)
		}
		lines := breaks.Split(strings.TrimSuffix(rest, "\n"), -1)
		for i, l := range lines {
			if l == delim && i != len(lines)-1 {
				t.Errorf("%q: the delimiter %q ends it at line %d", v, delim, i)
			}
		}
	}
}

func TestOutputKeysAreFixedNames(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("a key that is not a fixed name was accepted")
		}
	}()
	(&output{}).set("runID\nevil", 1)
}

func TestControlCharacterInputIsRefusedBeforeAnyRequest(t *testing.T) {
	f := newCLIFixture(t, ghsim.Options{})
	f.env["GH_TOKEN"] = testToken
	code := f.run(t, "dispatch", "--repo-url", f.sim.RepoURL("myorg", "my-app"), "--workflow-file", "deploy.yml", "--ref", "main", "--input", "environment=pr\x1b[2Jod\x00")
	if code != ExitFinal || !strings.Contains(f.stderr.String(), "--input environment: contains the control character U+001B") {
		t.Fatalf("exit %d, stderr %q", code, f.stderr.String())
	}
	if strings.ContainsAny(f.stderr.String(), "\x1b\x00") || f.sim.Stats().Requests != 0 {
		t.Fatalf("raw bytes on stderr or %d requests sent", f.sim.Stats().Requests)
	}
}
