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
	s := &sectionScan{
		br: bufio.NewReaderSize(r, maxLogLineBytes), n: n,
		start: started.Truncate(time.Second), end: completed.Truncate(time.Second).Add(time.Second),
		windowed: !started.IsZero() && !completed.IsZero(),
	}
	return s.run()
}

// sectionScan follows one pass over a log.
type sectionScan struct {
	br         *bufio.Reader
	n          int
	start, end time.Time
	windowed   bool

	in       bool
	sawError bool
	ring     []string
	last     time.Time
	// best is, without a window, the last section that held an error.
	best []string
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
	t, text := splitTimestamp(raw)
	if t.IsZero() {
		t = s.last
	}
	s.last = t
	if !s.windowed {
		s.unwindowed(text)
		return false
	}
	switch {
	case !s.in && !t.IsZero() && !t.Before(s.start):
		s.in = true
	case !s.in:
		return false
	}
	if !t.Before(s.end) {
		return true
	}
	if stepBoundary(text) {
		switch {
		case s.sawError:
			return true // the next step starts
		case t.Before(s.start.Add(time.Second)):
			s.ring = s.ring[:0] // an earlier step's tail shares the first second
		case !t.Before(s.end.Add(-time.Second)):
			return true
		}
	}
	s.keep(text)
	return false
}

// unwindowed keeps the current section and remembers the last one that
// held an error.
func (s *sectionScan) unwindowed(text string) {
	if stepBoundary(text) {
		if s.sawError {
			s.best = append(s.best[:0], s.ring...)
		}
		s.ring, s.sawError = s.ring[:0], false
	}
	s.keep(text)
}

func (s *sectionScan) keep(text string) {
	if strings.HasPrefix(text, "##[error]") {
		s.sawError = true
	}
	l := excerptLine(text)
	if l == "" {
		return
	}
	if len(s.ring) == s.n {
		copy(s.ring, s.ring[1:])
		s.ring = s.ring[:s.n-1]
	}
	s.ring = append(s.ring, l)
}

func (s *sectionScan) result() []string {
	if !s.windowed && !s.sawError {
		return append([]string(nil), s.best...)
	}
	return append([]string(nil), s.ring...)
}

// stepBoundary is a line that opens a step: its "Run" group, a post step,
// or the job's completion.
func stepBoundary(text string) bool {
	return strings.HasPrefix(text, "##[group]Run ") || text == "Post job cleanup." || text == "Cleaning up orphan processes"
}

// splitTimestamp parses the leading timestamp of a log line.
func splitTimestamp(raw []byte) (time.Time, string) {
	if i := bytes.IndexByte(raw, ' '); i >= 20 && i <= 40 && raw[4] == '-' {
		if t, err := time.Parse(time.RFC3339Nano, string(raw[:i])); err == nil {
			return t, string(raw[i+1:])
		}
	}
	return time.Time{}, string(raw)
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
