package ghclient

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-github/v90/github"

	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/internal/memtest"
)

// hostileListing writes a runs listing of n bytes of the given element,
// the shapes that cost the most memory once decoded.
func hostileListing(elem string, n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"total_count":1,"workflow_runs":[`)
	for b.Len() < n {
		b.WriteString(elem)
		b.WriteByte(',')
	}
	b.WriteString(elem + `]}`)
	return b.Bytes()
}

// A listing page is refused, with a clear error and bounded memory, when
// it is larger than MaxResponseBytes or would decode into too much.
func TestHostileListingIsRefusedWithBoundedMemory(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		gzip bool
	}{
		{"over the byte limit", hostileListing(`{"name":"`+strings.Repeat("x", 1000)+`"}`, MaxResponseBytes+1), false},
		{"empty runs with repositories", hostileListing(`{"repository":{},"head_repository":{}}`, MaxResponseBytes-64), false},
		{"nested empty arrays", hostileListing(`{"pull_requests":[{},{},{}]}`, MaxResponseBytes-64), false},
		{"gzip bomb", hostileListing(`{"name":"`+strings.Repeat("x", 4000)+`"}`, 64<<20), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := apiServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if tt.gzip {
					w.Header().Set("Content-Encoding", "gzip")
					zw := gzip.NewWriter(w)
					_, _ = zw.Write(tt.body)
					_ = zw.Close()
					return
				}
				_, _ = w.Write(tt.body)
			})
			var err error
			n := memtest.Allocated(func() {
				_, _, err = c.Actions.ListWorkflowRunsByFileName(context.Background(), "o", "r", "d.yml", &github.ListWorkflowRunsOptions{})
			})
			t.Logf("%d bytes allocated: %v", n, err)
			if !errors.Is(err, ErrResponseTooLarge) || !failure.IsFinal(Classify(err, "listing runs", Hints{})) {
				t.Fatalf("err = %v; want a final ErrResponseTooLarge", err)
			}
			if n > 64<<20 {
				t.Fatalf("%d MiB allocated", n>>20)
			}
		})
	}
}

// Just under both limits, the costliest shape decodes within bounded
// memory: 16,000 runs, each an empty run with an empty repository.
func TestListingJustUnderTheLimitsDecodesInBoundedMemory(t *testing.T) {
	body := []byte(`{"total_count":1,"workflow_runs":[` + strings.Repeat(`{"repository":{}},`, 15999) + `{"repository":{}}]}`)
	_, c := apiServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	var runs *github.WorkflowRuns
	var err error
	n := memtest.Allocated(func() {
		runs, _, err = c.Actions.ListWorkflowRunsByFileName(context.Background(), "o", "r", "d.yml", &github.ListWorkflowRunsOptions{})
	})
	t.Logf("%d bytes allocated for %d runs", n, len(runs.WorkflowRuns))
	if err != nil || len(runs.WorkflowRuns) != 16000 || n > 64<<20 {
		t.Fatalf("err %v, %d MiB allocated", err, n>>20)
	}
}

func TestContainerCounterSkipsStrings(t *testing.T) {
	tests := []struct {
		name   string
		pieces []string
		want   int
	}{
		{"objects and arrays", []string{`{"a":[{},[]]}`}, 4},
		{"braces in strings", []string{`{"a":"{[}]"}`}, 1},
		{"escaped quote", []string{`{"a":"\"{"}`}, 1},
		{"escaped backslash", []string{`{"a":"\\"}{}`}, 2},
		{"escape split across reads", []string{`{"a":"\`, `"{"}`}, 1},
		{"string split across reads", []string{`{"a":"{`, `["}`}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c containerCounter
			got := 0
			for _, p := range tt.pieces {
				got = c.count([]byte(p))
			}
			if got != tt.want {
				t.Fatalf("%d containers; want %d", got, tt.want)
			}
		})
	}
}
