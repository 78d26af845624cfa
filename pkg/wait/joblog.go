package wait

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/ghclient"
	"github.com/kargo-gha/kargo-gha/internal/safetext"
)

const (
	// ExcerptLines is how many of the failed step's last log lines are
	// kept: enough for a compiler error or a failed test's assertion and
	// its stack, few enough to read in a Promotion's status.
	ExcerptLines = 20
	// MaxLogBytes bounds how much of a job's log is read to find the
	// failed step's end. Logs are streamed, never held; a step whose end
	// lies further in only loses its excerpt.
	MaxLogBytes = 32 << 20
	// maxLogLineBytes is how much of one log line is looked at (the rest is
	// skipped unread into memory): a minified bundle printed on one line
	// must not become one huge line.
	maxLogLineBytes = 4 << 10
	// maxExcerptLineLen bounds one excerpt line in characters.
	maxExcerptLineLen = 300
)

// ErrLogTooLarge says the failed step's end lies beyond MaxLogBytes.
var ErrLogTooLarge = fmt.Errorf("the log is larger than %d MiB before the failed step ends", MaxLogBytes>>20)

// Excerpts reads, for each of st's failed jobs (already bounded to the
// first few by Diagnose) that names a failed step, the job's log and keeps
// that step's last ExcerptLines lines in the job's Excerpt. It is
// best-effort: a log that is missing, expired, too large or slow leaves
// that job without an excerpt, and the errors are returned for logging.
// Each log costs one API request and one blob download.
//
// GitHub API docs: https://docs.github.com/rest/actions/workflow-jobs#download-job-logs-for-a-workflow-run
func (c *Checker) Excerpts(ctx context.Context, client *ghclient.Client, st *Status) []error {
	var errs []error
	for i := range st.FailedJobs {
		j := &st.FailedJobs[i]
		if j.Step == "" || j.ID == 0 {
			continue
		}
		lines, err := readExcerpt(ctx, client, j)
		if err != nil {
			errs = append(errs, fmt.Errorf("no log excerpt for job %q: %w", j.Name, err))
			continue
		}
		j.Excerpt = lines
	}
	return errs
}

func readExcerpt(ctx context.Context, client *ghclient.Client, j *FailedJob) ([]string, error) {
	path := fmt.Sprintf("repos/%s/%s/actions/jobs/%d/logs", url.PathEscape(client.Repo.Owner), url.PathEscape(client.Repo.Name), j.ID)
	body, err := client.Download(ctx, path, fmt.Sprintf("the log of job %d", j.ID), MaxLogBytes)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	lines, err := StepExcerpt(body, j.StepStarted, j.StepCompleted, ExcerptLines)
	if errors.Is(err, ghclient.ErrDownloadTooLarge) {
		return nil, ErrLogTooLarge
	}
	return lines, err
}

// StepExcerpt reads a job log in GitHub's format (every line starting
// with its timestamp; a step's output opened by "##[group]Run ...";
// "##[error]" lines for errors) and returns the last n lines of the step
// that ran from started to completed (GitHub gives both to the second),
// cleaned. Reading stops where that step ends. Without the step's times it
// takes the last section that holds an error.
func StepExcerpt(r io.Reader, started, completed time.Time, n int) ([]string, error) {
	s := &sectionScan{br: bufio.NewReaderSize(r, maxLogLineBytes), ring: newRing(n), best: newRing(n)}
	if !started.IsZero() && !completed.IsZero() {
		s.windowed = true
		s.fallback = &sectionScan{ring: newRing(n), best: newRing(n)}
		s.start = secondKey(started)
		s.startNext = secondKey(started.Add(time.Second))
		s.endLast = secondKey(completed)
		s.end = secondKey(completed.Add(time.Second))
	}
	return s.run()
}

// secondKey is a time as the first 19 characters of a log line's
// timestamp (UTC, to the second): keys compare as the times do, without
// parsing every line.
func secondKey(t time.Time) []byte { return []byte(t.UTC().Format("2006-01-02T15:04:05")) }

// sectionScan follows one pass over a log. Lines are kept raw in a ring
// and cleaned only once, at the end: a log of millions of lines costs a
// copy per kept line, not a cleaning.
type sectionScan struct {
	br       *bufio.Reader
	windowed bool
	// start, startNext, endLast and end are second keys: the failed step's
	// first second, the one after it, its last second, and the one after.
	start, startNext, endLast, end []byte

	in       bool
	sawError bool
	ring     *ring
	last     []byte
	// best is, without a window, the last section that held an error.
	best     *ring
	bestSeen bool
	// fallback scans without the window until the window is entered: a log
	// whose times do not match the listing's still gives its error.
	fallback *sectionScan
}

func (s *sectionScan) run() ([]string, error) {
	for {
		raw, err := readLine(s.br)
		if len(raw) > 0 || err == nil {
			if s.line(raw) {
				return s.result(), nil
			}
		}
		if err == io.EOF {
			return s.result(), nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// line takes one log line; true when the section has ended.
func (s *sectionScan) line(raw []byte) (done bool) {
	key, text := splitTimestamp(raw)
	if key == nil {
		key = s.last
	} else {
		s.last = append(s.last[:0], key...)
	}
	if !s.windowed {
		s.unwindowed(text)
		return false
	}
	switch {
	case !s.in && key != nil && bytes.Compare(key, s.start) >= 0:
		s.in = true
	case !s.in:
		s.fallback.unwindowed(text)
		return false
	}
	if bytes.Compare(key, s.end) >= 0 {
		return true
	}
	if stepBoundary(text) {
		switch {
		case s.sawError:
			return true // the next step starts
		case bytes.Compare(key, s.startNext) < 0:
			s.ring.reset() // an earlier step's tail shares the first second
		case bytes.Compare(key, s.endLast) >= 0:
			return true
		}
	}
	s.keep(text)
	return false
}

// unwindowed keeps the current section and remembers the last one that
// held an error.
func (s *sectionScan) unwindowed(text []byte) {
	if stepBoundary(text) {
		if s.sawError {
			s.best.copyFrom(s.ring)
			s.bestSeen = true
		}
		s.ring.reset()
		s.sawError = false
	}
	s.keep(text)
}

func (s *sectionScan) keep(text []byte) {
	if bytes.HasPrefix(text, []byte("##[error]")) {
		s.sawError = true
	}
	if t := bytes.TrimSpace(text); len(t) == 0 || bytes.HasPrefix(t, []byte("##[endgroup]")) {
		return
	}
	s.ring.push(text)
}

func (s *sectionScan) result() []string {
	if s.windowed && !s.in {
		return s.fallback.result()
	}
	r := s.ring
	if !s.windowed && !s.sawError {
		if !s.bestSeen {
			return nil
		}
		r = s.best
	}
	var out []string
	for _, l := range r.lines() {
		if c := excerptLine(string(l)); c != "" {
			out = append(out, c)
		}
	}
	return out
}

// ring holds the last n lines, reusing their buffers.
type ring struct {
	buf   [][]byte
	first int
	size  int
}

func newRing(n int) *ring { return &ring{buf: make([][]byte, max(n, 0))} }

func (r *ring) push(line []byte) {
	if len(r.buf) == 0 {
		return
	}
	i := (r.first + r.size) % len(r.buf)
	if r.size == len(r.buf) {
		i = r.first
		r.first = (r.first + 1) % len(r.buf)
	} else {
		r.size++
	}
	r.buf[i] = append(r.buf[i][:0], line...)
}

func (r *ring) reset() { r.first, r.size = 0, 0 }

func (r *ring) lines() [][]byte {
	out := make([][]byte, 0, r.size)
	for k := range r.size {
		out = append(out, r.buf[(r.first+k)%len(r.buf)])
	}
	return out
}

func (r *ring) copyFrom(o *ring) {
	r.reset()
	for _, l := range o.lines() {
		r.push(l)
	}
}

// stepBoundary is a line that opens a step: its "Run" group, a post step,
// or the job's completion.
func stepBoundary(text []byte) bool {
	return bytes.HasPrefix(text, []byte("##[group]Run ")) || string(text) == "Post job cleanup." || string(text) == "Cleaning up orphan processes"
}

// splitTimestamp splits a log line into its timestamp's second key (nil
// when the line has no timestamp) and its text.
func splitTimestamp(raw []byte) (key, text []byte) {
	raw = bytes.TrimPrefix(raw, []byte("\ufeff")) // GitHub's logs can start with a BOM
	i := bytes.IndexByte(raw, ' ')
	if i < 20 || i > 40 || raw[4] != '-' || raw[7] != '-' || raw[10] != 'T' || raw[13] != ':' || raw[16] != ':' || raw[i-1] != 'Z' {
		return nil, raw
	}
	return raw[:19], raw[i+1:]
}

// excerptLine turns a log line into what a person reads: GitHub's
// commands shown as words, control characters and secrets removed,
// bounded.
func excerptLine(text string) string {
	switch {
	case strings.HasPrefix(text, "##[endgroup]"):
		return ""
	case strings.HasPrefix(text, "##[group]"):
		text = strings.TrimPrefix(text, "##[group]")
	case strings.HasPrefix(text, "##[error]"):
		text = "Error: " + strings.TrimPrefix(text, "##[error]")
	case strings.HasPrefix(text, "##[warning]"):
		text = "Warning: " + strings.TrimPrefix(text, "##[warning]")
	case strings.HasPrefix(text, "##["):
		if i := strings.IndexByte(text, ']'); i > 0 {
			text = text[i+1:]
		}
	}
	text = strings.TrimSpace(safetext.Clean(text))
	if r := []rune(text); len(r) > maxExcerptLineLen {
		text = string(r[:maxExcerptLineLen]) + "…"
	}
	return text
}

// readLine returns the next line without its end, at most maxLogLineBytes
// of it; the rest of a longer line is read past.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		keep := append([]byte(nil), line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = br.ReadSlice('\n')
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		return keep, nil
	}
	line = bytes.TrimRight(line, "\r\n")
	if err == io.EOF && len(line) > 0 {
		return line, nil
	}
	return line, err
}

// withExcerpt is the job's description followed by its excerpt, marked as
// the workflow's own output so that nobody takes it for kargo-gha's words.
func (j FailedJob) withExcerpt() string {
	if len(j.Excerpt) == 0 {
		return j.String()
	}
	return fmt.Sprintf("%s; the step's last %d log lines (the workflow's own output): «%s»", j.String(), len(j.Excerpt), strings.Join(j.Excerpt, " ⏎ "))
}
