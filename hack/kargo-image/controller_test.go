package main

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"testing"
)

// TestKargoController checks the Kargo controller binary that
// scripts/kargo-controller.sh builds (make kargo-controller-test builds it
// and runs this test; building takes minutes, so it is not part of make
// test, where it is skipped): it is Kargo's own cmd/controlplane at the
// Kargo version, static, and has the gha-* steps' package linked in.
//
//	KARGO_BINARY=bin/kargo [KARGO_VERSION=v1.11.2]
func TestKargoController(t *testing.T) {
	bin := os.Getenv("KARGO_BINARY")
	if bin == "" {
		t.Skip("KARGO_BINARY is unset: make kargo-controller-test builds the Kargo controller and runs this test")
	}
	wantVersion := os.Getenv("KARGO_VERSION")
	if wantVersion == "" {
		wantVersion = "v1.11.2"
	}

	// `kargo version` prints Kargo's version as Kargo's release build
	// stamps it (and logs about cloud credentials on stderr).
	cmd := exec.Command(bin, "version")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s version: %v\n%s%s", bin, err, stdout.String(), stderr.String())
	}
	var v struct {
		Version      string `json:"version"`
		GitCommit    string `json:"gitCommit"`
		GitTreeDirty bool   `json:"gitTreeDirty"`
		Platform     string `json:"platform"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &v); err != nil {
		t.Fatalf("%s version printed %q: %v", bin, stdout.String(), err)
	}
	if v.Version != wantVersion || v.GitCommit == "" || v.GitTreeDirty {
		t.Errorf("%s version: %+v, want version %s from a clean tree", bin, v, wantVersion)
	}

	// Kargo's main package, with this repository's two modules.
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if info.Path != "github.com/akuity/kargo/cmd/controlplane" || info.Main.Path != "github.com/akuity/kargo" {
		t.Errorf("main package %s of module %s, want Kargo's github.com/akuity/kargo/cmd/controlplane", info.Path, info.Main.Path)
	}
	deps := map[string]bool{}
	for _, d := range info.Deps {
		deps[d.Path] = true
	}
	for _, m := range []string{"github.com/kargo-gha/kargo-gha", "github.com/kargo-gha/kargo-gha/kargo"} {
		if !deps[m] {
			t.Errorf("the binary does not depend on %s", m)
		}
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" || settings["GOOS"] != "linux" {
		t.Errorf("build settings %v, want CGO_ENABLED=0 -trimpath=true GOOS=linux", settings)
	}

	// The registering package is linked (its init runs at start), and the
	// step names are in the binary.
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary is dynamically linked")
		}
	}
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		"github.com/kargo-gha/kargo-gha/kargo/steps.init.0":   false,
		"github.com/kargo-gha/kargo-gha/kargo/steps.Register": false,
	}
	for _, s := range syms {
		if _, ok := want[s.Name]; ok {
			want[s.Name] = true
		}
	}
	for s, found := range want {
		if !found {
			t.Errorf("no symbol %s in the binary", s)
		}
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []string{"gha-dispatch-workflow", "gha-wait-for-workflow"} {
		if !bytes.Contains(data, []byte(step)) {
			t.Errorf("the binary does not contain the step name %q", step)
		}
	}
	if !t.Failed() {
		t.Logf("%s: Kargo %s (%s, %s) with the gha-* steps", bin, v.Version, v.GitCommit, v.Platform)
	}
}
