package cli

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/kargo-gha/kargo-gha/internal/safetext"
)

// logFormat is --log-format: how progress and error lines go to stderr.
// Text, for people, is the default; json is one object a line (time,
// level, msg and the step's attributes) for log collectors.
type logFormat string

const (
	logText logFormat = "text"
	logJSON logFormat = "json"
)

func (l *logFormat) String() string {
	if *l == "" {
		return string(logText)
	}
	return string(*l)
}

func (l *logFormat) Set(s string) error {
	switch logFormat(s) {
	case logText, logJSON:
		*l = logFormat(s)
		return nil
	}
	return fmt.Errorf("%q is not a log format; use text or json", s)
}

func (*logFormat) Type() string { return "format" }

// jsonLog is the structured logger on stderr, nil for text.
func (f *Factory) jsonLog() *slog.Logger {
	if f.LogFormat != logJSON {
		return nil
	}
	return slog.New(cleanHandler{slog.NewJSONHandler(f.IO.ErrOut, nil)})
}

// logError tells the command's final error: "error: ..." in text, a
// record with the exit code in JSON.
func (f *Factory) logError(msg string, code int) {
	if l := f.jsonLog(); l != nil {
		l.Error(msg, "exitCode", code)
		return
	}
	fmt.Fprintln(f.IO.ErrOut, "error: "+msg)
}

// cleanHandler passes records on with their message and string attributes
// through safetext: structured logs are redacted as the text is.
type cleanHandler struct{ next slog.Handler }

func (h cleanHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h cleanHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, safetext.Clean(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(cleanAttr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h cleanHandler) WithAttrs(as []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(as))
	for i, a := range as {
		clean[i] = cleanAttr(a)
	}
	return cleanHandler{h.next.WithAttrs(clean)}
}

func (h cleanHandler) WithGroup(name string) slog.Handler {
	return cleanHandler{h.next.WithGroup(name)}
}

func cleanAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, safetext.Clean(v.String()))
	case slog.KindGroup:
		group := v.Group()
		clean := make([]any, len(group))
		for i, g := range group {
			clean[i] = cleanAttr(g)
		}
		return slog.Group(a.Key, clean...)
	case slog.KindAny:
		return slog.Any(a.Key, safetext.CleanValue(v.Any()))
	}
	return slog.Attr{Key: a.Key, Value: v}
}
