package cli

import (
	"bytes"
	"context"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/ghclient"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
)

// aliasBomb is a YAML document of n levels, each ten aliases of the one
// below: 10^n values once expanded, from a few hundred bytes.
func aliasBomb(n int) string {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i <= n; i++ {
		p := "*a" + string(rune('0'+i-1))
		b.WriteString("a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [" + strings.Repeat(p+", ", 9) + p + "]\n")
	}
	return b.String()
}

// The configuration cases of the hostile campaign, one named test each:
// refused with a clear error, in bounded memory, with no request sent.
func TestHostileConfigsAreRefusedBeforeAnyRequest(t *testing.T) {
	f := newCLIFixture(t, ghsim.Options{})
	f.env["GH_TOKEN"] = testToken
	repoURL := f.sim.RepoURL("myorg", "my-app")
	big := "repoURL: " + repoURL + "\nworkflowFile: deploy.yml\nref: main\n# " + strings.Repeat("x", 300<<10) + "\nextra: 1\n"
	tests := []struct {
		name string
		args []string
		file string
		want string
	}{
		{"YAML alias bomb, 7 levels", nil, aliasBomb(7), "expands to more than"},
		{"YAML alias bomb, 9 levels", nil, aliasBomb(9), "expands to more than"},
		{"config larger than the limit is refused, never cut", nil, big, "larger than 256 KiB"},
		{"deep nesting", nil, "inputs: " + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "\n", "nested more than"},
		{"input that is not UTF-8", []string{"--repo-url", repoURL, "--workflow-file", "deploy.yml", "--ref", "main", "--input", "environment=pr\xffod"}, "", "--input environment: is not valid UTF-8"},
		{"ref that is not UTF-8", []string{"--repo-url", repoURL, "--workflow-file", "deploy.yml", "--ref", "ma\xffin"}, "", "is not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"dispatch"}, tt.args...)
			if tt.file != "" {
				args = append(args, "--config", writeFile(t, "step.yaml", tt.file))
			}
			var before runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			code := f.run(t, args...)
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if code != ExitFinal || !strings.Contains(f.stderr.String(), tt.want) {
				t.Fatalf("exit %d, stderr %q; want %q", code, f.stderr.String(), tt.want)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
				t.Errorf("allocated %d MiB to refuse it", alloc>>20)
			}
			if f.sim.Stats().Requests != 0 {
				t.Fatalf("%d requests sent", f.sim.Stats().Requests)
			}
			if strings.IndexByte(f.stderr.String(), 0xff) >= 0 || strings.IndexByte(f.stderr.String(), 0x1b) >= 0 {
				t.Fatalf("raw bytes on stderr: %q", f.stderr.String())
			}
			t.Logf("refused in %s", time.Since(start).Round(time.Millisecond))
		})
	}
}

// JSON numbers with an exponent reach GitHub as plain digits.
func TestJSONExponentIsSentAsDigits(t *testing.T) {
	f := newCLIFixture(t, ghsim.Options{})
	f.env["GH_TOKEN"] = testToken
	code := f.run(t, "dispatch", "--config-json", `{"repoURL":"`+f.sim.RepoURL("myorg", "my-app")+`","workflowFile":"deploy.yml","ref":"main","inputs":{"deploy_version":1e6,"image_tag":1.10}}`)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, f.stderr.String())
	}
	in := f.sim.Runs(f.repo)[0].Inputs
	if in["deploy_version"] != "1000000" || in["image_tag"] != "1.10" {
		t.Fatalf("inputs sent %v", in)
	}
}

// A server that accepts connections but never answers: nothing was sent,
// so the exit is 75, and the message says what timed out.
func TestSilentServerIsTransientAndSaysWhatTimedOut(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a TLS handshake timeout")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn // open, never answered
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		ln.Close()
		<-done
		for _, c := range held {
			c.Close()
		}
	}()
	var stdout, stderr bytes.Buffer
	fac := &Factory{
		IO:     IOStreams{In: strings.NewReader(""), Out: &stdout, ErrOut: &stderr},
		Getenv: func(k string) string { return map[string]string{"GH_TOKEN": testToken}[k] },
		Runner: testRunner(&ghclient.Pool{}, nil), // the real dialer
	}
	code := Run(context.Background(), fac, []string{"dispatch", "--repo-url", "https://" + ln.Addr().String() + "/myorg/my-app", "--workflow-file", "deploy.yml", "--ref", "main", "--timeout", "2"})
	if code != ExitTransient || !strings.Contains(stderr.String(), "TLS handshake timeout") || !strings.Contains(stderr.String(), "nothing was dispatched") {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
}
