package safetext

import (
	"encoding/json"
	"reflect"
	"testing"
)

type conclusion string

func TestCleanValue(t *testing.T) {
	tok := "ghp_abcdefghijklmnopqrstuvwxyz0123"
	tests := []struct {
		name     string
		in, want any
	}{
		{"nil", nil, nil},
		{"number", int64(42), int64(42)},
		{"float", 1.5, 1.5},
		{"json number", json.Number("1.10"), json.Number("1.10")},
		{"bool", true, true},
		{"plain string", "success", "success"},
		{"string with a token", "run by " + tok, "run by " + Redacted},
		{"control characters", "a\x1b[31mb\nc\x00", "ab c"},
		{"named string type kept", conclusion("fail\x07ure"), conclusion("failure")},
		{"nested map and slice",
			map[string]any{"runID": int64(7), "jobs": []any{map[string]any{"name": "build\r\n", "url": "https://u:" + tok + "@h/x", "n": int64(1)}}, "ok": false},
			map[string]any{"runID": int64(7), "jobs": []any{map[string]any{"name": "build  ", "url": "https://" + Redacted + "@h/x", "n": int64(1)}}, "ok": false}},
		{"map keys", map[string]any{"k\x1b[0m": "v"}, map[string]any{"k": "v"}},
		{"typed slices and maps", map[string][]string{"a": {"x\ty", tok}}, map[string][]string{"a": {"x y", Redacted}}},
		{"array", [2]string{"a\n", "b"}, [2]string{"a ", "b"}},
		{"nil slice and map kept", map[string]any{"s": []any(nil), "m": map[string]any(nil)}, map[string]any{"s": []any(nil), "m": map[string]any(nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CleanValue(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("CleanValue(%#v) = %#v; want %#v", tt.in, got, tt.want)
			}
		})
	}
}

// The value given is not changed: CleanValue returns a copy.
func TestCleanValueCopies(t *testing.T) {
	in := map[string]any{"a": []any{"x\n"}}
	_ = CleanValue(in)
	if in["a"].([]any)[0] != "x\n" {
		t.Fatalf("the input was changed: %#v", in)
	}
}

// A map that holds itself is cut at maxValueDepth, not followed forever.
func TestCleanValueStopsAtDepth(t *testing.T) {
	m := map[string]any{}
	m["self"] = m
	got := CleanValue(m)
	depth := 0
	for v := got; ; depth++ {
		next, ok := v.(map[string]any)
		if !ok {
			if v != Redacted {
				t.Fatalf("cut with %#v", v)
			}
			break
		}
		v = next["self"]
	}
	if depth == 0 || depth > maxValueDepth+1 {
		t.Fatalf("depth %d", depth)
	}
}
