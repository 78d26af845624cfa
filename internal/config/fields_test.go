package config

import (
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/kargo-gha/kargo-gha/internal/config/schemas"
	"github.com/kargo-gha/kargo-gha/internal/repourl"
)

// TestConfigStructsMatchSchemas: the Go structs and the JSON Schemas
// beside them name the same fields, so that neither can gain a field the
// other lacks (a schema property the struct drops would be accepted and
// ignored; a struct field the schema lacks could never be set).
func TestConfigStructsMatchSchemas(t *testing.T) {
	tests := []struct {
		name   string
		schema []byte
		typ    reflect.Type
	}{
		{"gha-dispatch-workflow", schemas.DispatchWorkflow, reflect.TypeFor[DispatchConfig]()},
		{"gha-wait-for-workflow", schemas.WaitForWorkflow, reflect.TypeFor[WaitConfig]()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc schemaObject
			if err := json.Unmarshal(tt.schema, &doc); err != nil {
				t.Fatal(err)
			}
			compareFields(t, "", doc, tt.typ)
		})
	}
}

// schemaObject is the part of a JSON Schema object the comparison reads.
type schemaObject struct {
	Properties map[string]schemaObject `json:"properties"`
}

// compareFields compares the properties of an object schema with the json
// fields of a struct, and recurses into object properties that have their
// own properties (credentials).
func compareFields(t *testing.T, at string, s schemaObject, typ reflect.Type) {
	t.Helper()
	fields := map[string]reflect.Type{}
	for _, f := range jsonFields(typ) {
		fields[f.name] = typ.FieldByIndex(f.index).Type
	}
	if got, want := sortedNames(fields), sortedNames(s.Properties); got != want {
		t.Fatalf("%s: struct %s has json fields [%s]; the schema's properties are [%s]", where(at), typ, got, want)
	}
	for name, prop := range s.Properties {
		if len(prop.Properties) == 0 {
			continue
		}
		ft := fields[name]
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() != reflect.Struct {
			t.Fatalf("%s: the schema has properties, the field is a %s", at+name, ft)
		}
		compareFields(t, at+name+".", prop, ft)
	}
}

func where(at string) string {
	if at == "" {
		return "top level"
	}
	return strings.TrimSuffix(at, ".")
}

func sortedNames[V any](m map[string]V) string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}

func TestDecodeFields(t *testing.T) {
	notUTF8 := string([]byte{'m', 0xff})
	var c DispatchConfig
	decodeFields(map[string]any{
		"repoURL": 5, "ref": notUTF8, "timeout": float64(120), "insecureSkipTLSVerify": "yes",
		"credentials": map[string]string{"secretName": "s"}, "inputs": map[string]string{"a": "b"}, "extra": 1,
	}, &c)
	want := DispatchConfig{
		RepoFields: RepoFields{Credentials: &SecretRef{SecretName: "s"}},
		Ref:        notUTF8, Timeout: 120, Inputs: map[string]any{"a": "b"},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("decoded %+v, want %+v (values of the wrong type stay zero, strings unchanged)", c, want)
	}
	var w WaitConfig
	decodeFields(map[string]any{"runID": "12", "expectedConclusion": "", "pollInterval": 30}, &w)
	if w.RunID != "12" || w.ExpectedConclusion == nil || *w.ExpectedConclusion != "" || w.PollInterval != "" {
		t.Fatalf("decoded %+v", w)
	}
}

func TestMapHasOnlyTheFieldsSet(t *testing.T) {
	success := "success"
	got := WaitConfig{RepoFields: RepoFields{Owner: "o", Repo: "r", Credentials: &SecretRef{SecretName: "s"}}, RunID: int64(7), ExpectedConclusion: &success}.Map()
	want := map[string]any{"owner": "o", "repo": "r", "credentials": map[string]any{"secretName": "s"}, "runID": int64(7), "expectedConclusion": "success"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Map() = %#v, want %#v", got, want)
	}
	if got := (DispatchConfig{}).Map(); len(got) != 0 {
		t.Fatalf("zero config maps to %v", got)
	}
}

// TestTypedMapsAreNotDropped: the schema accepts a map[string]string as an
// object, so its entries must reach the parsed config.
func TestTypedMapsAreNotDropped(t *testing.T) {
	d, err := ParseDispatch(map[string]any{
		"owner": "o", "repo": "r", "credentials": map[string]string{"secretName": "s"},
		"workflowFile": "deploy.yml", "ref": "main", "inputs": map[string]string{"environment": "prod"},
	}, repourl.Options{})
	if err != nil || d.Legacy.SecretName != "s" || d.Inputs["environment"] != "prod" {
		t.Fatalf("got %+v, %v", d, err)
	}
}

// TestWaitStepFollowsTheDispatch: the wait after a dispatch targets the
// same repository, in the same format, with the same TLS setting.
func TestWaitStepFollowsTheDispatch(t *testing.T) {
	tests := []struct {
		name string
		cfg  map[string]any
		want map[string]any
	}{
		{"current", map[string]any{"repoURL": "https://ghe.example.com/o/r", "workflowFile": "d.yml", "ref": "main", "insecureSkipTLSVerify": true, "inputs": map[string]any{"a": 1}},
			map[string]any{"repoURL": "https://ghe.example.com/o/r", "runID": int64(42), "insecureSkipTLSVerify": true}},
		{"v1.8", map[string]any{"owner": "o", "repo": "r", "credentials": map[string]any{"secretName": "s"}, "workflowFile": "d.yml", "ref": "main", "timeout": 90},
			map[string]any{"owner": "o", "repo": "r", "credentials": map[string]any{"secretName": "s"}, "runID": int64(42)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ParseDispatch(tt.cfg, repourl.Options{})
			if err != nil {
				t.Fatal(err)
			}
			got := d.WaitStep(42).Map()
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("WaitStep = %#v, want %#v", got, tt.want)
			}
			if _, err := ParseWait(got, repourl.Options{}); err != nil {
				t.Fatalf("the wait config does not parse: %v", err)
			}
		})
	}
}
