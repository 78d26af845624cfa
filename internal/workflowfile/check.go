package workflowfile

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Value is an input's value as a dispatch would send it, or, when Unknown,
// an expression only its caller can evaluate (a Kargo ${{ }}): checked for
// being declared, never for its value.
type Value struct {
	Text    string
	Unknown bool
}

// Dispatch is what a dispatch would send.
type Dispatch struct {
	Inputs map[string]Value
	// CorrelationInput is the input that carries the dispatch's key into
	// the run's title; "" for none.
	CorrelationInput string
	// MaxInputs is the host's limit (MaxInputs when 0).
	MaxInputs int
}

// Problem is one mistake in a dispatch, named by the field it is in.
type Problem struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (p Problem) String() string { return p.Field + ": " + p.Message }

// Check reports every problem of d against the file at once, and the
// fields it could not check (expressions), in a stable order.
func Check(f *File, d Dispatch) (problems []Problem, notChecked []string) {
	if !f.Dispatchable {
		problems = append(problems, Problem{"workflowFile", "the workflow has no workflow_dispatch trigger at this ref (on: must list workflow_dispatch); GitHub refuses the dispatch"})
	}
	names := make([]string, 0, len(d.Inputs))
	for n := range d.Inputs {
		names = append(names, n)
	}
	sort.Strings(names)
	sent := len(names)
	if d.CorrelationInput != "" && d.Inputs[d.CorrelationInput] == (Value{}) {
		sent++
	}
	if limit := cmp(d.MaxInputs, MaxInputs); sent > limit {
		problems = append(problems, Problem{"inputs", fmt.Sprintf("%d inputs would be sent; GitHub takes at most %d", sent, limit)})
	}
	for _, n := range names {
		p, unchecked := f.checkInput(n, d.Inputs[n])
		if p != "" {
			problems = append(problems, Problem{"inputs." + n, p})
		}
		if unchecked {
			notChecked = append(notChecked, "inputs."+n)
		}
	}
	for _, n := range f.Declared() {
		in := f.Inputs[n]
		if _, given := d.Inputs[n]; in.Required && !in.HasDefault && !given && n != d.CorrelationInput {
			problems = append(problems, Problem{"inputs." + n, "the workflow requires this input and declares no default; set it"})
		}
	}
	if d.CorrelationInput != "" {
		problems = append(problems, f.checkCorrelation(d.CorrelationInput)...)
	}
	return problems, notChecked
}

func cmp(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// checkInput is the problem with one given input, if any, and whether its
// value was left unchecked.
func (f *File) checkInput(name string, v Value) (problem string, unchecked bool) {
	in, ok := f.Inputs[name]
	if !ok {
		return fmt.Sprintf("the workflow does not declare this input; it declares %s", declaredList(f.Declared())), false
	}
	if v.Unknown {
		return "", true
	}
	switch in.Type {
	case TypeChoice:
		if len(in.Options) > 0 && !contains(in.Options, v.Text) {
			return fmt.Sprintf("%q is not one of the choice's options (%s)", v.Text, strings.Join(in.Options, ", ")), false
		}
	case TypeBoolean:
		if v.Text != "true" && v.Text != "false" {
			return fmt.Sprintf("%q is not a boolean; the input takes true or false", v.Text), false
		}
	case TypeNumber:
		if _, err := strconv.ParseFloat(v.Text, 64); err != nil {
			return fmt.Sprintf("%q is not a number", v.Text), false
		}
	}
	return "", false
}

func declaredList(names []string) string {
	if len(names) == 0 {
		return "no inputs"
	}
	return strings.Join(names, ", ")
}

// expression finds ${{ … }} in a run-name.
var expression = regexp.MustCompile(`\$\{\{(.*?)\}\}`)

// checkCorrelation reports a correlation input the run-name does not echo
// (the run could then never be found by its key) or that is not declared.
func (f *File) checkCorrelation(name string) []Problem {
	var ps []Problem
	if _, ok := f.Inputs[name]; !ok {
		ps = append(ps, Problem{"correlationInput", fmt.Sprintf("%q is not a declared input; declare it under on.workflow_dispatch.inputs (declared: %s)", name, declaredList(f.Declared()))})
	}
	if !RunNameCarries(f.RunName, name) {
		ps = append(ps, Problem{"correlationInput", fmt.Sprintf("the workflow's run-name (%q) does not contain ${{ inputs.%s }}: runs would not carry the key, and the run is never found by it; add it to run-name", f.RunName, name)})
	}
	return ps
}

// RunNameCarries reports whether a run-name puts input name into the
// title: inputs.NAME or github.event.inputs.NAME inside ${{ }}.
func RunNameCarries(runName, name string) bool {
	ref := regexp.MustCompile(`(^|[^\w.])(github\.event\.)?inputs\.` + regexp.QuoteMeta(name) + `($|[^\w-])`)
	for _, m := range expression.FindAllStringSubmatch(runName, -1) {
		if ref.MatchString(m[1]) {
			return true
		}
	}
	return false
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
