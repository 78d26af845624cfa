package dispatch

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestStateSurvivesAJSONRoundTrip(t *testing.T) {
	d := &Dispatcher{}
	s := d.Record(Request{CorrelationInput: "k"}, "", false)
	s.Phase, s.SentAt, s.NotBefore, s.RunsPage = PhaseSent, s.IntentAt.Add(time.Second), s.IntentAt.Truncate(time.Second), "https://github.com/o/r/actions/workflows/d.yml"
	b, err := json.Marshal(s.Encode())
	if err != nil {
		t.Fatal(err)
	}
	var saved any
	if err := json.Unmarshal(b, &saved); err != nil {
		t.Fatal(err)
	}
	got, err := Decode(saved)
	if err != nil {
		t.Fatal(err)
	}
	if got.Phase != PhaseSent || got.Attempt != s.Attempt || got.Key != s.Key || !got.SentAt.Equal(s.SentAt) || !got.NotBefore.Equal(s.NotBefore) {
		t.Fatalf("got %+v, want %+v", got, s)
	}
}

// A state that cannot be read is never taken for "no state": that would
// send the dispatch again.
func TestDecodeFailsClosed(t *testing.T) {
	valid := (&Dispatcher{}).Record(Request{}, "", false).Encode()
	valid["runsPage"] = "https://github.com/o/r/actions/workflows/d.yml"
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for kk, vv := range valid {
			m[kk] = vv
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	cases := map[string]any{
		"nothing at all":                   nil,
		"not an object":                    "abc",
		"an earlier, unversioned encoding": map[string]any{"attempt": "abc", "maybeSent": true, "runsPage": valid["runsPage"]},
		"a renamed key":                    with("intentAt", nil),
		"an unknown field":                 with("maybeSent", true),
		"another version":                  with("version", 2),
		"an unknown phase":                 with("phase", "posted"),
		"no attempt":                       with("attempt", nil),
		"a time that is not a time":        with("intentAt", "yesterday"),
		"found without a run":              with("phase", "found"),
		"sending without why":              with("phase", "sending"),
	}
	for name, v := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Decode(v)
			var se *StateError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a *StateError", err)
			}
			if !strings.Contains(err.Error(), "not dispatching again") {
				t.Errorf("the error does not say it refuses to dispatch: %v", err)
			}
			if m, ok := v.(map[string]any); ok && m["runsPage"] != nil && !strings.Contains(err.Error(), valid["runsPage"].(string)) {
				t.Errorf("the error does not name the runs page: %v", err)
			}
		})
	}
}
