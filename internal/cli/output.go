package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/kargo-gha/kargo-gha/pkg/failure"
)

// EnvKargoOutput names the file Kargo custom steps read outputs from.
const EnvKargoOutput = "KARGO_OUTPUT"

// output is a step's output, in a stable key order.
type output struct {
	f      *Factory
	keys   []string
	values map[string]any
}

// newOutput checks, before any work is done, that $KARGO_OUTPUT (when set)
// can be written: finding out after a dispatch would lose its run ID.
func newOutput(f *Factory) (*output, error) {
	if path := f.Getenv(EnvKargoOutput); path != "" {
		if err := appendTo(path, ""); err != nil {
			return nil, failure.Final(fmt.Errorf("%s cannot be written, so nothing was done: %w", EnvKargoOutput, err))
		}
	}
	return &output{f: f}, nil
}

// appendTo appends text to the file at path, creating it (mode 0600).
func appendTo(path, text string) error {
	fh, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = fh.WriteString(text)
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	return err
}

func (o *output) set(key string, v any) {
	if o.values == nil {
		o.values = map[string]any{}
	}
	if _, ok := o.values[key]; !ok {
		o.keys = append(o.keys, key)
	}
	o.values[key] = v
}

// MarshalJSON writes the keys in the order they were set.
func (o *output) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kj, _ := json.Marshal(k)
		vj, err := json.Marshal(o.values[k])
		if err != nil {
			return nil, err
		}
		b.Write(kj)
		b.WriteByte(':')
		b.Write(vj)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

// emit prints the output as one JSON object on stdout and appends key=value
// lines to $KARGO_OUTPUT when it is set (heredoc form for multi-line values).
func (o *output) emit() error {
	f := o.f
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(f.IO.Out, string(b)); err != nil {
		return err
	}
	path := f.Getenv(EnvKargoOutput)
	if path == "" {
		return nil
	}
	var lines strings.Builder
	for _, k := range o.keys {
		v, ok := o.values[k].(string)
		if !ok {
			j, _ := json.Marshal(o.values[k])
			v = string(j)
		}
		if strings.ContainsAny(v, "\r\n") {
			delim := "KARGO_GHA_EOF"
			for strings.Contains(v, delim) {
				delim += "_"
			}
			fmt.Fprintf(&lines, "%s<<%s\n%s\n%s\n", k, delim, v, delim)
			continue
		}
		fmt.Fprintf(&lines, "%s=%s\n", k, v)
	}
	if err := appendTo(path, lines.String()); err != nil {
		what := "the work was done"
		if id, ok := o.values["runID"]; ok {
			what = fmt.Sprintf("run %v was dispatched (do not dispatch again)", id)
		}
		return failure.Final(fmt.Errorf("writing %s failed (%w) after %s; the output is on stdout: %s", EnvKargoOutput, err, what, b))
	}
	return nil
}
