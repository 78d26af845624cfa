package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kargo-gha/kargo-gha/internal/config"
)

// ExitUsage: the command line itself is wrong (an unknown command or
// flag, a flag value that does not parse, an argument where none is
// taken). Nothing was read or sent. Problems of the step configuration,
// from a file or from flags, are ExitFinal.
const ExitUsage = 2

// usageError is a mistake in how the command was called.
type usageError struct {
	err error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// asUsage marks err, returned by cobra for cmd, as a usage error, with a
// suggestion for a mistyped flag and a pointer to the help.
func asUsage(cmd *cobra.Command, err error) error {
	msg := oneLine(err.Error())
	// cobra's "unknown command ... \n\nDid you mean this?\n\tcheck" told as
	// a mistyped flag is.
	if head, suggestions, ok := strings.Cut(msg, " Did you mean this? "); ok {
		msg = fmt.Sprintf("%s (did you mean %s?)", head, strings.Join(strings.Fields(suggestions), " or "))
	}
	if name, ok := strings.CutPrefix(msg, "unknown flag: --"); ok {
		if s := config.Suggest(name, flagNames(cmd.Flags())); s != "" {
			msg += fmt.Sprintf(" (did you mean --%s?)", s)
		}
	}
	return &usageError{fmt.Errorf("%s; see %s --help", msg, cmd.CommandPath())}
}

// usageOf recognises the errors cobra returns before any command runs:
// they carry no type, only words.
func usageOf(cmd *cobra.Command, err error) error {
	var ue *usageError
	if errors.As(err, &ue) {
		return err
	}
	msg := err.Error()
	for _, prefix := range []string{"unknown command", "requires at least", "unknown flag", "unknown shorthand flag", "invalid argument", "accepts ", "flag needs an argument", "bad flag syntax", "if any flags in the group", "required flag"} {
		if strings.HasPrefix(msg, prefix) {
			return asUsage(cmd, err)
		}
	}
	return err
}

func flagNames(fs *pflag.FlagSet) []string {
	var out []string
	fs.VisitAll(func(f *pflag.Flag) { out = append(out, f.Name) })
	return out
}

// Flags that set configuration fields, by field: a problem with a field the
// user typed as a flag is told with the flag's name.
var (
	dispatchFlagFields = map[string]string{
		"repoURL": "repo-url", "workflowFile": "workflow-file", "ref": "ref", "inputs": "input",
		"timeout": "timeout", "insecureSkipTLSVerify": "insecure-skip-tls-verify", "correlationInput": "correlation-input",
		"expectedHeadSHA": "expected-head-sha", "cancelOnMismatch": "cancel-on-mismatch",
	}
	waitFlagFields = map[string]string{
		"repoURL": "repo-url", "runID": "run-id", "expectedConclusion": "expected-conclusion",
		"pollInterval": "poll-interval", "insecureSkipTLSVerify": "insecure-skip-tls-verify",
		"outputsArtifact": "outputs-artifact",
	}
)

// inFlagTerms restates the problems of a step configuration in the terms
// of the command line: a field set by a flag (typed: the configuration
// the flags give) is named by its flag ("--poll-interval: ..."), and a required field is asked for as the flag
// ("--ref is required"), mentioning the configuration's key only when a
// configuration was given. Other problems (a key in the configuration)
// keep the key's name.
func inFlagTerms(err error, fields map[string]string, typed map[string]any, fromConfig bool) error {
	var ce *config.Error
	if !errors.As(err, &ce) {
		return err
	}
	out := &config.Error{Step: ce.Step, Problems: make([]config.Problem, len(ce.Problems))}
	for i, p := range ce.Problems {
		top, rest, _ := strings.Cut(p.Field, ".")
		flag, ok := fields[top]
		switch {
		case !ok:
		case p.Message == "is required" && !fromConfig:
			p = config.Problem{Message: "--" + flag + " is required"}
		case p.Message == "is required":
			p.Message = "is required (in the configuration, or --" + flag + ")"
		case !hasPath(typed, p.Field):
		case rest != "":
			p.Field = "--" + flag + " " + rest
		default:
			p.Field = "--" + flag
		}
		out.Problems[i] = p
	}
	return replaceConfigError(err, ce, out)
}

// hasPath reports whether the dotted field path is set in m.
func hasPath(m map[string]any, path string) bool {
	top, rest, nested := strings.Cut(path, ".")
	v, ok := m[top]
	if !ok || !nested {
		return ok
	}
	sub, ok := v.(map[string]any)
	return ok && hasPath(sub, rest)
}

// replaceConfigError is err with the configuration error old in its chain
// told as repl, keeping err's class.
func replaceConfigError(err error, old, repl *config.Error) error {
	return &restatedError{msg: strings.Replace(err.Error(), old.Error(), repl.Error(), 1), cause: err}
}

// restatedError is an error told in other words; it unwraps to the
// original, so its class and type stay.
type restatedError struct {
	msg   string
	cause error
}

func (e *restatedError) Error() string { return e.msg }
func (e *restatedError) Unwrap() error { return e.cause }
