package config

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	// MaxInputs is GitHub's limit on workflow_dispatch inputs (github.com and
	// GHES 3.21 and later; older GHES allow 10 and say so in their answer).
	MaxInputs = 25
	// MaxInputsLength is GitHub's limit on the size of the whole inputs
	// payload, in characters.
	MaxInputsLength = 65535
)

// renderJSONNumber keeps the digits written (1.10 stays 1.10), but writes
// an exponent out (1e6 becomes 1000000), as workflows compare strings.
func renderJSONNumber(n json.Number) (string, error) {
	s := n.String()
	if !strings.ContainsAny(s, "eE") {
		return s, nil
	}
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return "", fmt.Errorf("%s is not a number GitHub can take", s)
	}
	return renderFloat(f, 64)
}

// RenderInput turns one input value into the exact string sent to GitHub.
// Workflows read inputs as strings, so every value is sent as one: integers
// in plain digits (1000000, never 1e+06), other numbers in their shortest
// exact decimal form, booleans as true/false. json.Number keeps the digits
// the user wrote (1.10 stays 1.10).
func RenderInput(v any) (string, error) {
	switch t := v.(type) {
	case string:
		return t, nil
	case bool:
		return strconv.FormatBool(t), nil
	case json.Number:
		return renderJSONNumber(t)
	case int:
		return strconv.FormatInt(int64(t), 10), nil
	case int8:
		return strconv.FormatInt(int64(t), 10), nil
	case int16:
		return strconv.FormatInt(int64(t), 10), nil
	case int32:
		return strconv.FormatInt(int64(t), 10), nil
	case int64:
		return strconv.FormatInt(t, 10), nil
	case uint:
		return strconv.FormatUint(uint64(t), 10), nil
	case uint8:
		return strconv.FormatUint(uint64(t), 10), nil
	case uint16:
		return strconv.FormatUint(uint64(t), 10), nil
	case uint32:
		return strconv.FormatUint(uint64(t), 10), nil
	case uint64:
		return strconv.FormatUint(t, 10), nil
	case float32:
		return renderFloat(float64(t), 32)
	case float64:
		return renderFloat(t, 64)
	case nil:
		return "", fmt.Errorf("is null; give a value or leave the input out to use the workflow's default")
	case map[string]any, []any:
		return "", fmt.Errorf("is a nested %s; workflow_dispatch inputs are strings, numbers or booleans (pass structured data as a string: in Kargo, ${{ asJSON(value) }} or ${{ quote(value) }})", kindName(t))
	default:
		return "", fmt.Errorf("has unsupported type %T; use a string, number or boolean", v)
	}
}

func renderFloat(f float64, bits int) (string, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "", fmt.Errorf("is %v, which is not a number GitHub accepts", f)
	}
	// 'f' with precision -1 is the shortest decimal that reads back as the
	// same float, and never uses an exponent.
	return strconv.FormatFloat(f, 'f', -1, bits), nil
}

func kindName(v any) string {
	if _, ok := v.(map[string]any); ok {
		return "object"
	}
	return "array"
}

// renderInputs renders every input, reporting each bad one and the limits
// GitHub would enforce, so nothing is sent that GitHub would refuse.
func renderInputs(raw map[string]any, ps *problems) map[string]string {
	if raw == nil {
		return nil
	}
	out := make(map[string]string, len(raw))
	names := make([]string, 0, len(raw))
	for name := range raw {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !utf8.ValidString(name) {
			ps.add("inputs", "an input name is not valid UTF-8 (%q)", name)
			continue
		}
		if at, r, ok := controlChar(name); ok {
			ps.add("inputs", "the input name %q contains the control character %U at byte %d", name, r, at)
			continue
		}
		s, err := RenderInput(raw[name])
		if err != nil {
			ps.add("inputs."+name, "%v", err)
			continue
		}
		if !utf8.ValidString(s) {
			ps.add("inputs."+name, "is not valid UTF-8; GitHub would replace the bad bytes, so it is refused")
			continue
		}
		if at, r, ok := controlChar(s); ok {
			ps.add("inputs."+name, "contains the control character %U at byte %d; only newlines and tabs are allowed, so it is refused", r, at)
			continue
		}
		out[name] = s
	}
	if len(raw) > MaxInputs {
		ps.add("inputs", "has %d entries; GitHub accepts at most %d", len(raw), MaxInputs)
	}
	if n := InputsLength(out); n > MaxInputsLength {
		ps.add("inputs", "is %d characters as JSON; GitHub accepts at most %d", n, MaxInputsLength)
	}
	return out
}

// controlChar finds the first control character of s other than newline
// and tab: a workflow would pass NUL, ESC or CR on to its shell commands
// and logs, where it hides or rewrites text.
func controlChar(s string) (at int, r rune, ok bool) {
	for i, c := range s {
		if c != '\n' && c != '\t' && unicode.IsControl(c) {
			return i, c, true
		}
	}
	return 0, 0, false
}

// InputsLength is the size in characters of the inputs object as sent.
func InputsLength(inputs map[string]string) int {
	b, _ := json.Marshal(inputs)
	return utf8.RuneCount(b)
}
