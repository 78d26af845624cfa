package config

import (
	"reflect"
	"strings"
)

// The repository fields, by their names in a config block. Their
// presence, not their values, decides the format (see parseRepoFields), so
// they are looked up by name as well as decoded.
const (
	fieldRepoURL     = "repoURL"
	fieldOwner       = "owner"
	fieldRepo        = "repo"
	fieldCredentials = "credentials"
)

var legacyFields = []string{fieldOwner, fieldRepo, fieldCredentials}

// RepoFields name the repository in both steps' config blocks: RepoURL in
// the current format; Owner, Repo and Credentials in the deprecated v1.8
// one.
type RepoFields struct {
	RepoURL     string     `json:"repoURL,omitempty"`
	Owner       string     `json:"owner,omitempty"`
	Repo        string     `json:"repo,omitempty"`
	Credentials *SecretRef `json:"credentials,omitempty"`
}

// SecretRef is the v1.8 format's credentials block.
type SecretRef struct {
	// SecretName names the Secret in the project namespace holding
	// accessToken and, for GitHub Enterprise Server, baseURL and uploadURL.
	SecretName string `json:"secretName,omitempty"`
}

// decodeFields copies the values of m into the fields of the struct out
// points to, each under its json tag's name.
//
// Values are copied as they are rather than through a JSON round trip:
// encoding/json would turn invalid UTF-8 into U+FFFD and unknown Go types
// into objects, hiding exactly what the closer checks must see (a ref or
// an input that is not UTF-8, a value of an unsupported type). A value of
// the wrong type leaves its field zero: the schema has reported it.
func decodeFields(m map[string]any, out any) {
	v := reflect.ValueOf(out).Elem()
	for _, f := range jsonFields(v.Type()) {
		if raw, ok := m[f.name]; ok {
			setField(v.FieldByIndex(f.index), raw)
		}
	}
}

// setField supports the kinds the config structs use: int64 (any Go
// number that is whole, as WholeNumber reads it), any, a pointer to a
// string or to a nested struct, map[string]any, and fields whose type the
// value has exactly (string, bool).
func setField(dst reflect.Value, raw any) {
	switch {
	case dst.Kind() == reflect.Int64:
		if n, ok := WholeNumber(raw); ok {
			dst.SetInt(n)
		}
	case dst.Kind() == reflect.Interface:
		if raw != nil {
			dst.Set(reflect.ValueOf(raw))
		}
	case dst.Kind() == reflect.Pointer && dst.Type().Elem().Kind() == reflect.Struct:
		if sub, ok := asMap(raw); ok {
			p := reflect.New(dst.Type().Elem())
			decodeFields(sub, p.Interface())
			dst.Set(p)
		}
	case dst.Kind() == reflect.Pointer:
		p := reflect.New(dst.Type().Elem())
		if assign(p.Elem(), raw) {
			dst.Set(p)
		}
	case dst.Type() == reflect.TypeFor[map[string]any]():
		if m, ok := asMap(raw); ok {
			dst.Set(reflect.ValueOf(m))
		}
	default:
		assign(dst, raw)
	}
}

// asMap takes the map types the schema accepts as objects: a library
// caller's map[string]string passes validation, so it must not be
// dropped here.
func asMap(raw any) (map[string]any, bool) {
	switch m := raw.(type) {
	case map[string]any:
		return m, true
	case map[string]string:
		out := make(map[string]any, len(m))
		for k, v := range m {
			out[k] = v
		}
		return out, true
	}
	return nil, false
}

func assign(dst reflect.Value, raw any) bool {
	v := reflect.ValueOf(raw)
	if !v.IsValid() || v.Type() != dst.Type() {
		return false
	}
	dst.Set(v)
	return true
}

// encodeFields is the config map of the struct in: every field that is
// set (not its zero value) under its json tag's name, with Go values as
// Kargo hands them (strings, bool, int64, maps). Maps are shared, not
// copied.
func encodeFields(in any) map[string]any {
	v := reflect.ValueOf(in)
	out := map[string]any{}
	for _, f := range jsonFields(v.Type()) {
		fv := v.FieldByIndex(f.index)
		switch {
		case fv.IsZero():
		case fv.Kind() == reflect.Pointer && fv.Elem().Kind() == reflect.Struct:
			out[f.name] = encodeFields(fv.Elem().Interface())
		case fv.Kind() == reflect.Pointer:
			out[f.name] = fv.Elem().Interface()
		default:
			out[f.name] = fv.Interface()
		}
	}
	return out
}

type jsonField struct {
	name  string
	index []int
}

// jsonFields lists the config fields of struct type t, embedded structs'
// included, by their json tag's name.
func jsonFields(t reflect.Type) []jsonField {
	var out []jsonField
	for _, f := range reflect.VisibleFields(t) {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous || !f.IsExported() || name == "" || name == "-" {
			continue
		}
		out = append(out, jsonField{name: name, index: f.Index})
	}
	return out
}
