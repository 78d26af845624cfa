package config

import (
	"bytes"
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/repourl"
)

var workflowFilePattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]*\.(yml|yaml)$`)

// FuzzParseConfigs feeds JSON configurations (both formats, both steps)
// to the parsers: no panic, and whatever is accepted keeps the promises
// the dispatch relies on.
func FuzzParseConfigs(f *testing.F) {
	for _, s := range []string{
		`{"repoURL":"https://github.com/o/r","workflowFile":"d.yml","ref":"main","inputs":{"a":1.10,"b":true},"timeout":120}`,
		`{"owner":"o","repo":"r","credentials":{"secretName":"s"},"workflowFile":"d.yaml","ref":"v1"}`,
		`{"repoURL":"https://github.com/o/r","runID":"123","expectedConclusion":"success","pollInterval":"30s"}`,
		`{"owner":"o","repo":"r","credentials":{"secretName":"s"},"runID":5}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var cfg map[string]any
		if dec.Decode(&cfg) != nil {
			return
		}
		if d, err := ParseDispatch(cfg, repourl.Options{}); err == nil {
			if !workflowFilePattern.MatchString(d.WorkflowFile) || strings.Contains(d.WorkflowFile, "..") || checkRef(d.Ref) != nil {
				t.Fatalf("accepted workflow %q ref %q", d.WorkflowFile, d.Ref)
			}
			if d.Timeout < time.Second || d.Timeout > MaxRunTimeout || len(d.Inputs) > MaxInputs || InputsLength(d.Inputs) > MaxInputsLength {
				t.Fatalf("accepted timeout %s, %d inputs", d.Timeout, len(d.Inputs))
			}
			if (d.Legacy == nil) == (d.RepoURL == "") {
				t.Fatalf("format ambiguous: %+v", d)
			}
		} else if _, ok := err.(*Error); !ok {
			t.Fatalf("error of type %T: %v", err, err)
		}
		if w, err := ParseWait(cfg, repourl.Options{}); err == nil && (w.RunID <= 0 || (w.PollInterval != 0 && w.PollInterval < MinPollInterval)) {
			t.Fatalf("accepted %+v", w)
		}
	})
}

// FuzzRenderInput: numbers are rendered exactly (they read back as the
// same value) and never in exponent form.
func FuzzRenderInput(f *testing.F) {
	f.Add(1.1, int64(1000000), "1.10")
	f.Add(1e21, int64(-1), "")
	f.Add(5e-324, int64(math.MaxInt64), "x")
	f.Fuzz(func(t *testing.T, fl float64, n int64, s string) {
		if got, err := RenderInput(n); err != nil || got != strconv.FormatInt(n, 10) {
			t.Fatalf("RenderInput(%d) = %q, %v", n, got, err)
		}
		if got, _ := RenderInput(s); got != s {
			t.Fatalf("string changed: %q -> %q", s, got)
		}
		got, err := RenderInput(fl)
		if math.IsNaN(fl) || math.IsInf(fl, 0) {
			if err == nil {
				t.Fatalf("RenderInput(%v) accepted", fl)
			}
			return
		}
		back, perr := strconv.ParseFloat(got, 64)
		if err != nil || perr != nil || back != fl || strings.ContainsAny(got, "eE") {
			t.Fatalf("RenderInput(%v) = %q (reads back as %v)", fl, got, back)
		}
	})
}
