package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/safetext"
	"github.com/kargo-gha/kargo-gha/pkg/clock"
	"github.com/kargo-gha/kargo-gha/pkg/step"
)

// ErrInterrupted is (wrapped in) the cause of a context ended by a stop
// signal: SIGINT, SIGTERM, SIGHUP or SIGQUIT.
var ErrInterrupted = errors.New("interrupted")

// stepFunc is one of the step layer's steps.
type stepFunc func(context.Context, *step.Context) (step.Result, error)

// driver calls a step until it stops Running, as Kargo would, keeping its
// output as the state of the next call and pausing RetryAfter between calls
// (idle when the step names none) on the Runner's clock.
type driver struct {
	clock clock.Clock
	idle  time.Duration
	show  func(step.Result)
	// deadline, when set, stops the calls once the clock passes it, with
	// cause as the reason.
	deadline time.Time
	cause    error
}

// drive returns the last result; stop is why the calls stopped before the
// step did (ctx's cause, or the deadline's), nil when the step ended.
func (d driver) drive(ctx context.Context, run stepFunc, sc *step.Context) (res step.Result, stop error, err error) {
	clk := clock.Or(d.clock)
	for {
		res, err = run(ctx, sc)
		if d.show != nil {
			d.show(res)
		}
		if err != nil || res.Status != step.StatusRunning {
			return res, nil, err
		}
		sc.SharedState = map[string]any{sc.Alias: res.Output}
		pause := d.idle
		if res.RetryAfter != nil {
			pause = *res.RetryAfter
		}
		if !d.deadline.IsZero() && !clk.Now().Add(pause).Before(d.deadline) {
			// The next call would come after the deadline: wait out what is
			// left of it (no call: a Retry-After is never cut short), so
			// the cause is true when told and the command ends when asked.
			if left := d.deadline.Sub(clk.Now()); left > 0 && clk.Sleep(ctx, left) != nil {
				return res, context.Cause(ctx), nil
			}
			return res, d.cause, nil
		}
		if ctx.Err() != nil || clk.Sleep(ctx, pause) != nil {
			return res, context.Cause(ctx), nil
		}
	}
}

// progress writes a line for people on stderr.
func progress(f *Factory, format string, args ...any) {
	if l := f.jsonLog(); l != nil {
		l.Info(fmt.Sprintf(format, args...))
		return
	}
	fmt.Fprintln(f.IO.ErrOut, safetext.Clean(fmt.Sprintf(format, args...)))
}

// statusPrinter shows a person how a step goes, each message once: the
// lines the step logs and, for a wait, its Running messages. A step logs
// the text it also returns as Running (a retry), and some lines on every
// call (the dispatch's "dispatching … (credentials: …)"); shown twice they
// say nothing more. Running messages appear with the time waited: on a
// terminal that understands it as one updating line, otherwise as plain
// lines a log keeps.
type statusPrinter struct {
	w       io.Writer
	tty     bool
	elapsed bool // prefix lines with the time waited
	start   time.Time

	mu     sync.Mutex // a step may log from more than one goroutine
	last   string     // the last message shown, logged or Running
	logged string     // the last logged line
	seen   map[string]bool
	open   bool

	// json, with --log-format json, takes every line instead.
	json *slog.Logger
}

// maxSeenLines bounds the memory of logged lines; past it, lines may
// repeat, which is harmless.
const maxSeenLines = 1024

// newStatusPrinter is the wait's printer: logged lines and Running
// messages, with the time waited.
func newStatusPrinter(f *Factory) *statusPrinter {
	return &statusPrinter{w: f.IO.ErrOut, tty: liveUpdates(isTerminal(f.IO.ErrOut), f.Getenv("TERM")), elapsed: true, start: time.Now(), json: f.jsonLog()}
}

// newLogPrinter is the dispatch's printer: logged lines only, as they are.
func newLogPrinter(f *Factory) *statusPrinter {
	return &statusPrinter{w: f.IO.ErrOut, start: time.Now(), json: f.jsonLog()}
}

// liveUpdates says whether progress may rewrite its line: only on a
// terminal that understands escapes.
func liveUpdates(terminal bool, term string) bool { return terminal && term != "dumb" }

// logf shows a line the step logs, unless it was shown before.
func (p *statusPrinter) logf(format string, args ...any) {
	line := safetext.Clean(fmt.Sprintf(format, args...))
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen[line] {
		return
	}
	if p.seen == nil || len(p.seen) >= maxSeenLines {
		p.seen = map[string]bool{}
	}
	p.seen[line] = true
	p.endLine()
	if p.elapsed {
		fmt.Fprintf(p.w, "[%s] %s\n", p.since(), line)
	} else {
		fmt.Fprintln(p.w, line)
	}
	p.last, p.logged = line, line
}

// show shows a Running message, unless it is the line just logged (or, in
// a log, the message shown last).
func (p *statusPrinter) show(res step.Result) {
	if res.Status != step.StatusRunning {
		return
	}
	msg := safetext.Clean(res.Message)
	p.mu.Lock()
	defer p.mu.Unlock()
	if msg == p.logged || (!p.tty && msg == p.last) {
		return
	}
	if p.json != nil {
		p.json.Info(msg, "status", string(res.Status), "elapsed", p.since().String())
		p.last = msg
		return
	}
	p.logged = ""
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K[%s] %s", p.since(), msg)
		p.open = true
	} else {
		fmt.Fprintf(p.w, "[%s] %s\n", p.since(), msg)
	}
	p.last = msg
}

func (p *statusPrinter) since() time.Duration { return time.Since(p.start).Round(time.Second) }

// done ends the updating line, if one is open.
func (p *statusPrinter) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endLine()
}

func (p *statusPrinter) endLine() {
	if p.open {
		fmt.Fprintln(p.w)
		p.open = false
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// durationValue is a flag that takes a Go duration (2m, 90s) or a number
// of seconds (120), so that every time flag reads the same way.
type durationValue struct{ d *time.Duration }

func (v durationValue) String() string {
	if v.d == nil || *v.d == 0 {
		return ""
	}
	return shortDuration(*v.d)
}

// shortDuration is d as a person writes it: 1h, 1h30m, 90s, not 1h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (v durationValue) Set(s string) error {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n <= 0 || n > 1<<31 {
			return fmt.Errorf("%q must be a positive number of seconds or a duration such as 2m", s)
		}
		*v.d = time.Duration(n) * time.Second
		return nil
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return fmt.Errorf("%q is neither a number of seconds (120) nor a duration (2m, 90s)", s)
	case d <= 0: // "0s" and "-1m" are durations: say what is wrong with them
		return fmt.Errorf("%q must be a positive number of seconds or a duration such as 2m", s)
	}
	*v.d = d
	return nil
}

func (durationValue) Type() string { return "duration" }

// printerHandler is the slog.Handler of the command's progress: the
// message alone, once, for people on stderr (the attributes are for
// operators' logs, Kargo's among them).
type printerHandler struct {
	logf func(format string, args ...any)
}

func (printerHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h printerHandler) Handle(_ context.Context, r slog.Record) error {
	h.logf("%s", r.Message)
	return nil
}
func (h printerHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h printerHandler) WithGroup(string) slog.Handler      { return h }

// progressLog is a logger whose messages p prints; with --log-format json,
// the structured logger itself, attributes and all. A line logged is also
// the Running message that follows it: p remembers it to show it once.
func progressLog(p *statusPrinter) *slog.Logger {
	if p.json != nil {
		return slog.New(rememberHandler{p: p, next: p.json.Handler()})
	}
	return slog.New(printerHandler{logf: p.logf})
}

// rememberHandler notes each message in p before passing the record on.
type rememberHandler struct {
	p    *statusPrinter
	next slog.Handler
}

func (h rememberHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}
func (h rememberHandler) Handle(ctx context.Context, r slog.Record) error {
	h.p.mu.Lock()
	h.p.logged, h.p.last = safetext.Clean(r.Message), safetext.Clean(r.Message)
	h.p.mu.Unlock()
	return h.next.Handle(ctx, r)
}
func (h rememberHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return rememberHandler{p: h.p, next: h.next.WithAttrs(as)}
}
func (h rememberHandler) WithGroup(name string) slog.Handler {
	return rememberHandler{p: h.p, next: h.next.WithGroup(name)}
}
