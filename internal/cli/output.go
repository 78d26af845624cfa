package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/internal/safetext"
)

// EnvKargoOutput names the file Kargo custom steps read outputs from.
const EnvKargoOutput = "KARGO_OUTPUT"

// outputKeys are the only names an output has: fixed in code, so that no
// data ever shapes the key of a key=value line.
var outputKeys = map[string]bool{
	"runID": true, "runURL": true, "htmlURL": true, "attribution": true, "correlationKey": true,
	"conclusion": true, "runAttempt": true, "failedJobs": true,
	"headSHA": true, "headBranch": true, "links": true,
	"outputs": true, "failure": true,
}

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
	fh, err := openOutputFile(path)
	if err != nil {
		return err
	}
	_, err = fh.WriteString(text)
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	return err
}

// openOutputFile opens path for appending without ever blocking: opening
// a FIFO nobody reads waits forever (O_NONBLOCK makes it fail instead),
// and writing to one that is read waits on its reader. So only a regular
// file, or the null device, is accepted.
func openOutputFile(path string) (*os.File, error) {
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NONBLOCK, 0o600)
	if err != nil {
		if fi, serr := os.Stat(path); serr == nil && !acceptedOutputFile(fi) {
			return nil, notRegular(path, fi)
		}
		return nil, err
	}
	fi, err := fh.Stat()
	if err == nil && !acceptedOutputFile(fi) {
		err = notRegular(path, fi)
	}
	if err != nil {
		fh.Close()
		return nil, err
	}
	return fh, nil
}

func acceptedOutputFile(fi os.FileInfo) bool {
	if fi.Mode().IsRegular() {
		return true
	}
	null, err := os.Stat(os.DevNull)
	return err == nil && os.SameFile(fi, null)
}

func notRegular(path string, fi os.FileInfo) error {
	kind := "not a regular file"
	if fi.Mode()&os.ModeNamedPipe != 0 {
		kind = "a named pipe (FIFO), not a regular file"
	}
	return fmt.Errorf("%s is %s", path, kind)
}

func (o *output) set(key string, v any) {
	if !outputKeys[key] {
		panic("cli: output key " + key + " is not one of the fixed output names")
	}
	if o.values == nil {
		o.values = map[string]any{}
	}
	if _, ok := o.values[key]; !ok {
		o.keys = append(o.keys, key)
	}
	o.values[key] = cleanOutput(v)
}

// cleanOutput is what of v may leave the process: every string in it, at
// any depth, with secrets redacted and control characters removed, as in
// messages. A value of another type than JSON's is cleaned in its JSON form,
// so nothing passes as is.
func cleanOutput(v any) any {
	switch v.(type) {
	case nil, bool, int, int64, float64, json.Number, string, []any, map[string]any:
		return safetext.CleanValue(v)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var generic any
	if json.Unmarshal(b, &generic) != nil {
		return nil
	}
	return safetext.CleanValue(generic)
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
// lines to $KARGO_OUTPUT when it is set. Both are tried: either may be the
// one a caller reads. When one fails the work is done all the same, so the
// error carries the output.
func (o *output) emit() error {
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	_, outErr := fmt.Fprintln(o.f.IO.Out, string(b))
	var fileErr error
	if path := o.f.Getenv(EnvKargoOutput); path != "" {
		fileErr = appendTo(path, o.lines())
	}
	switch {
	case outErr != nil:
		return failure.Final(&outputLostError{where: "stdout", err: outErr, out: o, json: b})
	case fileErr != nil:
		return failure.Final(&outputLostError{where: EnvKargoOutput, err: fileErr, out: o, json: b})
	}
	return nil
}

// lines are the KARGO_OUTPUT lines of the output.
func (o *output) lines() string {
	var b strings.Builder
	for _, k := range o.keys {
		v, ok := o.values[k].(string)
		if !ok {
			j, _ := json.Marshal(o.values[k])
			v = string(j)
		}
		b.WriteString(outputLine(k, v))
	}
	return b.String()
}

// outputLine is one key=value line, or a heredoc when v holds a line
// break (cleaned values never do; this keeps it so for any other). The
// delimiter is never a substring of v, so no line of v can end it early,
// whichever of \n, \r\n or \r a reader splits on.
func outputLine(k, v string) string {
	if !strings.ContainsAny(v, "\r\n") {
		return k + "=" + v + "\n"
	}
	delim := "KARGO_GHA_EOF"
	for strings.Contains(v, delim) {
		delim += "_"
	}
	return k + "<<" + delim + "\n" + v + "\n" + delim + "\n"
}

// outputLostError is an output that could not be delivered after the work
// was done. Its message carries the output, since stderr may now be the
// only place the run is named.
type outputLostError struct {
	where string
	err   error
	out   *output
	json  []byte
	// dispatched says the command dispatched the run, so doing it again
	// would start a second one.
	dispatched bool
}

func (e *outputLostError) Unwrap() error { return e.err }

func (e *outputLostError) Error() string {
	what := "the work was done"
	if id, ok := e.out.values["runID"]; ok {
		what = fmt.Sprintf("run %v", id)
		if u, ok := e.out.values["htmlURL"]; ok {
			what += fmt.Sprintf(" (%v)", u)
		}
		if c, ok := e.out.values["conclusion"]; ok {
			what += fmt.Sprintf(" completed with conclusion %v", c)
		} else if e.dispatched {
			what += " was dispatched"
		} else {
			what += " was found"
		}
	}
	if e.dispatched {
		what += ": do not dispatch again"
	}
	return fmt.Sprintf("the output was lost: writing it to %s failed (%v) after %s; the output is: %s", e.where, e.err, what, e.json)
}

// asOutputLost finds an outputLostError in err.
func asOutputLost(err error) (*outputLostError, bool) {
	var e *outputLostError
	ok := errors.As(err, &e)
	return e, ok
}
