package wait

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/internal/memtest"
)

// realLog is a job log as GitHub writes it (shortened): a composite
// action's inner group, a step that ends in the same second as the next
// one begins, the failure, and the post steps.
const realLog = "\ufeff" + `2026-12-02T10:00:00.1000000Z Current runner version: '2.321.0'
2026-12-02T10:00:00.2000000Z ##[group]Operating System
2026-12-02T10:00:00.2000000Z Ubuntu
2026-12-02T10:00:00.2000000Z ##[endgroup]
2026-12-02T10:00:01.0000000Z ##[group]Run actions/checkout@v4
2026-12-02T10:00:01.0000000Z with:
2026-12-02T10:00:01.0000000Z ##[endgroup]
2026-12-02T10:00:03.5000000Z checkout done
2026-12-02T10:00:03.7000000Z ##[group]Run make test
2026-12-02T10:00:03.7000000Z make test
2026-12-02T10:00:03.7000000Z shell: /usr/bin/bash -e {0}
2026-12-02T10:00:03.7000000Z ##[endgroup]
2026-12-02T10:00:04.1000000Z go test ./...
2026-12-02T10:00:05.0000000Z ##[group]Run ./scripts/inner.sh
2026-12-02T10:00:05.0000000Z ##[endgroup]
2026-12-02T10:00:06.0000000Z --- FAIL: TestDeploy (0.01s)
2026-12-02T10:00:06.0000000Z     deploy_test.go:12: want 3 replicas, got 2
2026-12-02T10:00:06.1000000Z ##[error]Process completed with exit code 1.
2026-12-02T10:00:06.3000000Z Post job cleanup.
2026-12-02T10:00:06.4000000Z [command]/usr/bin/git version
2026-12-02T10:00:07.0000000Z Cleaning up orphan processes
`

func at(s string) time.Time {
	t, _ := time.Parse(time.RFC3339, s)
	return t
}

func TestStepExcerptCutsTheFailedStepOut(t *testing.T) {
	want := []string{"Run make test", "make test", "shell: /usr/bin/bash -e {0}", "go test ./...", "Run ./scripts/inner.sh",
		"--- FAIL: TestDeploy (0.01s)", "deploy_test.go:12: want 3 replicas, got 2", "Error: Process completed with exit code 1."}
	tests := []struct {
		name               string
		started, completed time.Time
		n                  int
		want               []string
	}{
		// The step's times are whole seconds: checkout's tail shares its
		// first second, the post step its last.
		{name: "by its times", started: at("2026-12-02T10:00:03Z"), completed: at("2026-12-02T10:00:06Z"), n: 20, want: want},
		{name: "times in another zone", started: at("2026-12-02T11:00:03+01:00"), completed: at("2026-12-02T11:00:06+01:00"), n: 20, want: want},
		{name: "last lines", started: at("2026-12-02T10:00:03Z"), completed: at("2026-12-02T10:00:06Z"), n: 3, want: want[5:]},
		{name: "without times, the section with the error", n: 20, want: want[4:]},
		{name: "times the log does not reach", started: at("2026-12-02T11:00:00Z"), completed: at("2026-12-02T11:00:05Z"), n: 20, want: want[4:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := StepExcerpt(strings.NewReader(realLog), tt.started, tt.completed, tt.n)
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("%q, %v\nwant %q", got, err, tt.want)
			}
		})
	}
}

// A line of megabytes is looked at up to a bound and counts as one line.
func TestStepExcerptBoundsLongLines(t *testing.T) {
	log := "2026-12-02T10:00:01.0000000Z ##[group]Run build\n2026-12-02T10:00:02.0000000Z " + strings.Repeat("x", 5<<20) + "\n2026-12-02T10:00:02.0000000Z ##[error]boom\n"
	got, err := StepExcerpt(strings.NewReader(log), at("2026-12-02T10:00:01Z"), at("2026-12-02T10:00:02Z"), 20)
	if err != nil || len(got) != 3 || len([]rune(got[1])) > maxExcerptLineLen+1 || got[2] != "Error: boom" {
		t.Fatalf("%d lines, %v; %q", len(got), err, got[2:])
	}
}

// A 2 GiB log whose failed step never ends within MaxLogBytes: the read
// stops at the bound, streamed (memory far below the log), and the
// excerpt is dropped with an error that says why.
func TestExcerptOfA2GiBLogIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 32 MiB over TLS")
	}
	f := newFixture(t, 0, time.Minute, 0)
	f.sim.AddWorkflow(f.repo, ghsim.Workflow{File: "huge.yml", Conclusion: "failure", Jobs: []ghsim.Job{{Name: "spam", Steps: []string{"Print"}, FailAt: 1, LogFill: 2 << 30}}})
	id := f.start("huge.yml")
	f.clock.Advance(2 * time.Minute)
	var errs []error
	var st *Status
	alloc := memtest.Allocated(func() {
		var err error
		st, err = f.checker.Check(context.Background(), f.client, id, "success")
		if err != nil {
			t.Fatal(err)
		}
		if err := f.checker.Diagnose(context.Background(), f.client, st); err != nil {
			t.Fatal(err)
		}
		errs = f.checker.Excerpts(context.Background(), f.client, st)
	})
	if len(errs) != 1 || !errors.Is(errs[0], ErrLogTooLarge) || !strings.Contains(errs[0].Error(), `job "spam"`) {
		t.Fatalf("errors %v, want one naming the job and the size limit", errs)
	}
	if len(st.FailedJobs) != 1 || st.FailedJobs[0].Excerpt != nil || !strings.Contains(st.Err().Error(), `job "spam" failed at step 1 "Print"`) {
		t.Fatalf("%+v: %v", st.FailedJobs, st.Err())
	}
	// Below what was read (half of it; twice it under the race detector):
	// neither the log nor the part read was held.
	bound := uint64(MaxLogBytes / 2)
	if raceEnabled {
		bound = 2 * MaxLogBytes
	}
	if alloc > bound {
		t.Fatalf("reading the log allocated %d MiB: it is not streamed", alloc>>20)
	}
	t.Logf("read %d MiB of a 2 GiB log, allocating %d MiB", MaxLogBytes>>20, alloc>>20)
}

func TestParseOutputs(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]any
		err  string
	}{
		{in: `{"imageDigest":"sha256:ab","replicas":3,"big":9007199254740993,"ratio":1.5,"ok":false,"_x-y":""}`,
			want: map[string]any{"imageDigest": "sha256:ab", "replicas": int64(3), "big": int64(9007199254740993), "ratio": 1.5, "ok": false, "_x-y": ""}},
		{in: `{}`, want: map[string]any{}},
		{in: `[1]`, err: "not a JSON object"},
		{in: `{"a": null}`, err: `key "a" is null`},
		{in: `{"a": [1]}`, err: `key "a" holds an object or a list`},
		{in: `{"a": 1, "a": 2}`, err: `key "a" appears twice`},
		{in: `{"a.b": 1}`, err: `key "a.b" is not a name`},
		{in: `{"1a": 1}`, err: `key "1a" is not a name`},
		{in: `{"a": 1e999}`, err: "out of range"},
		{in: `{"a": 1} {"b": 2}`, err: "more than one JSON value"},
		{in: `{"a": 1`, err: "not valid JSON"},
		{in: manyKeys(MaxOutputKeys + 1), err: fmt.Sprintf("more than %d keys", MaxOutputKeys)},
	}
	for _, tt := range tests {
		got, err := ParseOutputs([]byte(tt.in))
		switch {
		case tt.err == "" && (err != nil || !reflect.DeepEqual(got, tt.want)):
			t.Errorf("%.40s: %#v, %v", tt.in, got, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%.40s: %v, want %q", tt.in, err, tt.err)
		}
	}
}

func manyKeys(n int) string {
	var parts []string
	for i := range n {
		parts = append(parts, fmt.Sprintf(`"k%d":%d`, i, i))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// An archive whose directory says outputs.json is small while its data
// inflates to megabytes: the read stops at the bound.
func TestOutputsEntryRefusesALyingZipBomb(t *testing.T) {
	var raw bytes.Buffer
	fw, _ := flate.NewWriter(&raw, flate.BestCompression)
	payload := bytes.Repeat([]byte(" "), 8<<20)
	_, _ = fw.Write(payload)
	_ = fw.Close()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, err := zw.CreateRaw(&zip.FileHeader{Name: OutputsFile, Method: zip.Deflate, CRC32: crc32.ChecksumIEEE(payload),
		CompressedSize64: uint64(raw.Len()), UncompressedSize64: uint64(raw.Len())})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write(raw.Bytes())
	_ = zw.Close()
	_, err = outputsEntry(b.Bytes())
	if err == nil || !strings.Contains(err.Error(), "more than its header says (") {
		t.Fatalf("%v", err)
	}
}

func TestOutputsEntryPaths(t *testing.T) {
	for _, name := range []string{"/etc/passwd", "../x", "a/../../x", `..\x`, "C:/x", "a\x00b"} {
		if _, err := outputsEntry(ghsim.ZipFiles(map[string][]byte{OutputsFile: []byte("{}"), name: nil})); err == nil || !strings.Contains(err.Error(), "unsafe path") {
			t.Errorf("%q: %v", name, err)
		}
	}
	for _, name := range []string{"a/b.txt", "a..b", "dir/"} {
		if _, err := outputsEntry(ghsim.ZipFiles(map[string][]byte{OutputsFile: []byte("{}"), name: nil})); err != nil {
			t.Errorf("%q: %v", name, err)
		}
	}
}

// An artifact that expires between the listing and the download: GitHub
// answers the download 410, a final error that says so.
func TestOutputsOfAnArtifactGoneAtDownload(t *testing.T) {
	f := newFixture(t, 0, time.Minute, 0)
	f.sim.AddWorkflow(f.repo, ghsim.Workflow{File: "out.yml", Artifacts: []ghsim.Artifact{{Name: "outputs", Zip: ghsim.ZipFiles(map[string][]byte{OutputsFile: []byte(`{}`)})}}})
	id := f.start("out.yml")
	f.clock.Advance(2 * time.Minute)
	f.sim.InjectFault(&ghsim.Fault{Route: "download-artifact", Status: 410})
	_, err := f.checker.Outputs(context.Background(), f.client, id, "outputs")
	if !errors.Is(err, ErrOutputs) || !failure.IsFinal(err) || !strings.Contains(err.Error(), "has expired (410 Gone)") {
		t.Fatalf("%v", err)
	}
}
