package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

var messagePrinter = message.NewPrinter(language.English)

// compileSchema compiles one of the embedded step schemas; a broken schema is
// a programming error caught by every test, hence the panic.
func compileSchema(name string, doc []byte) *jsonschema.Schema {
	parsed, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		panic(fmt.Sprintf("schema %s: %v", name, err))
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(name, parsed); err != nil {
		panic(fmt.Sprintf("schema %s: %v", name, err))
	}
	return c.MustCompile(name)
}

// fieldHints adds advice to type and pattern errors of particular fields.
type fieldHints map[string]string

// validateSchema checks cfg against schema and turns every leaf error into a
// Problem naming its field.
func validateSchema(schema *jsonschema.Schema, cfg map[string]any, hints fieldHints, ps *problems) {
	err := schema.Validate(toJSONValue(cfg))
	var verr *jsonschema.ValidationError
	if err == nil {
		return
	}
	if !errors.As(err, &verr) {
		ps.add("", "%v", err)
		return
	}
	for _, leaf := range leaves(verr) {
		addSchemaProblem(leaf, schema, hints, ps)
	}
}

// withoutRequiredMisspelt drops "repoURL: is required" when the field is
// there misspelt ("repoUrl: unknown field; did you mean repoURL?"): one
// mistake, told once.
func withoutRequiredMisspelt(ps problems) problems {
	meant := map[string]bool{}
	for _, p := range ps {
		if s, ok := strings.CutPrefix(p.Message, suggestionPrefix); ok {
			parent := p.Field[:strings.LastIndex(p.Field, ".")+1]
			meant[parent+strings.TrimSuffix(s, "?")] = true
		}
	}
	out := make(problems, 0, len(ps))
	for _, p := range ps {
		if p.Message == requiredMessage && meant[p.Field] {
			continue
		}
		out = append(out, p)
	}
	return out
}

const (
	requiredMessage  = "is required"
	suggestionPrefix = "unknown field; did you mean "
)

func leaves(e *jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(e.Causes) == 0 {
		return []*jsonschema.ValidationError{e}
	}
	var out []*jsonschema.ValidationError
	for _, c := range e.Causes {
		out = append(out, leaves(c)...)
	}
	return out
}

func addSchemaProblem(e *jsonschema.ValidationError, schema *jsonschema.Schema, hints fieldHints, ps *problems) {
	field := strings.Join(e.InstanceLocation, ".")
	join := func(name string) string {
		if field == "" {
			return name
		}
		return field + "." + name
	}
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		for _, m := range k.Missing {
			ps.add(join(m), requiredMessage)
		}
	case *kind.AdditionalProperties:
		for _, p := range k.Properties {
			if s := Suggest(p, fieldNames(schema, field)); s != "" {
				ps.add(join(p), suggestionPrefix+"%s?", s)
				continue
			}
			ps.add(join(p), "unknown field")
		}
	case *kind.Type:
		msg := fmt.Sprintf("must be %s, not %s", strings.Join(k.Want, " or "), k.Got)
		if h := hints[topField(field)]; h != "" {
			msg += " (" + h + ")"
		}
		ps.add(field, "%s", msg)
	case *kind.Pattern:
		msg := fmt.Sprintf("%q does not match %s", k.Got, k.Want)
		if h := hints[field+"#pattern"]; h != "" {
			msg = fmt.Sprintf("%q %s", k.Got, h)
		}
		ps.add(field, "%s", msg)
	case *kind.MaxProperties:
		ps.add(field, "has %d entries; at most %d are allowed", k.Got, k.Want)
	case *kind.Minimum:
		ps.add(field, "must be at least %s, not %s", k.Want.RatString(), k.Got.RatString())
	case *kind.Maximum:
		ps.add(field, "must be at most %s, not %s", k.Want.RatString(), k.Got.RatString())
	case *kind.MinLength:
		ps.add(field, "must not be empty")
	default:
		ps.add(field, "%s", e.ErrorKind.LocalizedString(messagePrinter))
	}
}

func topField(field string) string {
	if i := strings.IndexByte(field, '.'); i >= 0 {
		return field[:i]
	}
	return field
}

// toJSONValue converts the values Kargo and the YAML reader hand over (int,
// float64, json.Number, map[string]any, []any, and typed maps or slices of
// those) into the shapes the validator knows, leaving anything else alone so
// that it is reported as a type error rather than silently accepted.
func toJSONValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, val := range t {
			out[k] = toJSONValue(val)
		}
		return out
	case map[string]string:
		out := make(map[string]any, len(t))
		for k, val := range t {
			out[k] = val
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, val := range t {
			out[i] = toJSONValue(val)
		}
		return out
	case []string:
		out := make([]any, len(t))
		for i, val := range t {
			out[i] = val
		}
		return out
	case json.Number, string, bool, nil,
		int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return t
	default:
		return fmt.Sprintf("%T", v) // reported as a string where a string is not expected
	}
}

// fieldNames are the fields the schema declares at the top level (field
// ""), where a mistyped key is most likely; none deeper.
func fieldNames(schema *jsonschema.Schema, field string) []string {
	if field != "" || schema == nil {
		return nil
	}
	names := make([]string, 0, len(schema.Properties))
	for name := range schema.Properties {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
