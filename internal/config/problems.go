// Package config validates and converts the configuration blocks of the
// gha-* promotion steps: a map as Kargo hands it to a step (after expression
// evaluation), or as the command line reads it from YAML or JSON. It knows
// both the current format and the deprecated v1.8 one.
package config

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong with a configuration, tied to its field.
type Problem struct {
	// Field is the dotted path of the offending field ("inputs.version"),
	// empty for the configuration as a whole.
	Field   string
	Message string
}

func (p Problem) String() string {
	if p.Field == "" {
		return p.Message
	}
	return p.Field + ": " + p.Message
}

// Error lists every problem found in one configuration, so that a user fixes
// them all in one go instead of one per attempt.
type Error struct {
	Step     string
	Problems []Problem
}

func (e *Error) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.String()
	}
	noun := "problem"
	if len(msgs) > 1 {
		noun = "problems"
	}
	return fmt.Sprintf("invalid %s config (%d %s): %s", e.Step, len(msgs), noun, strings.Join(msgs, "; "))
}

// problems collects Problems while a configuration is checked.
type problems []Problem

func (ps *problems) add(field, format string, args ...any) {
	*ps = append(*ps, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
}

// err returns nil when nothing was found, else an *Error with one problem
// per field, in field order. Where the schema and a closer check both found
// something wrong with a field, the closer check's message (added later, and
// more specific) is the one kept.
func (ps problems) err(step string) error {
	if len(ps) == 0 {
		return nil
	}
	ps = withoutRequiredMisspelt(ps)
	last := map[string]int{}
	for i, p := range ps {
		last[p.Field] = i
	}
	out := make([]Problem, 0, len(last))
	for i, p := range ps {
		if last[p.Field] == i {
			out = append(out, p)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	return &Error{Step: step, Problems: out}
}
