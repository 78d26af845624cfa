package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestShortRun runs every scenario in the short setting, so the benchmark
// cannot rot. Timings are not asserted; correctness is: this project never
// hands a run to the wrong dispatch.
func TestShortRun(t *testing.T) {
	r, err := run(short, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	r.Command = "go test"
	dir := t.TempDir()
	out, chart := filepath.Join(dir, "performance.md"), filepath.Join(dir, "chart.png")
	if err := write(r, out, chart); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(chart); err != nil || fi.Size() < 1000 {
		t.Fatalf("chart: %v", err)
	}
	md, _ := os.ReadFile(out)
	if !strings.Contains(string(md), "## Targets") {
		t.Fatal("report incomplete")
	}
	for _, c := range r.Overhead {
		if c.Approach == "kargo-gha" && (c.Errors > 0 || c.Misattributed > 0) {
			t.Errorf("overhead %s L=%s: %d errors, %d misattributed", c.Mode, c.L, c.Errors, c.Misattributed)
		}
	}
	// Scenario 3: with a key, and without one (sent one at a time).
	ours := 0
	for _, c := range r.Concurrency {
		if strings.HasPrefix(c.Approach, "kargo-gha") {
			ours++
			if c.OK != c.N || c.Errors > 0 || c.Misattributed > 0 || c.ClaimedTwice > 0 {
				t.Errorf("concurrency: %+v", c)
			}
		}
	}
	if ours != 2 {
		t.Errorf("concurrency: %d rows of kargo-gha, want 2 (with and without a key)", ours)
	}
	if r.Tokens[0].Exchanges != 1 {
		t.Errorf("token exchanges %+v", r.Tokens[0])
	}
	// One counted request per command-line dispatch with run details; no
	// extra request to wait on a run that succeeded; on a failed one, one
	// to list its jobs and one per failed job (here one) for its log's
	// download URL (the log itself comes from the blob store, which is not
	// the API and costs no rate limit).
	checkScale(t, append(r.Scale, r.ScaleMixed...))
	want := []float64{1, 1, 3}
	for i, b := range r.Budgets {
		if b.Errors > 0 || b.PerCall != want[i] {
			t.Errorf("budget %q: %.2f counted requests per invocation (want %.0f), %d unexpected exits", b.What, b.PerCall, want[i], b.Errors)
		}
	}
}
