package ghsim

import (
	"testing"
	"time"
)

func TestParseCreatedFollowsGitHubsSearchSyntax(t *testing.T) {
	at := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }
	tests := []struct {
		expr string
		t    string
		want bool
	}{
		{">=2026-11-23T10:00:00Z", "2026-11-23T10:00:00Z", true},
		{">=2026-11-23T10:00:00Z", "2026-11-23T09:59:59Z", false},
		{">2026-11-23T10:00:00Z", "2026-11-23T10:00:00Z", false},
		{"<2026-11-23", "2026-11-22T23:59:59Z", true},
		{"<=2026-11-23", "2026-11-23T23:59:59Z", true},
		{">2026-11-23", "2026-11-23T23:59:59Z", false},
		{"2026-11-01..2026-11-23", "2026-11-23T12:00:00Z", true},
		{"2026-11-01..2026-11-23", "2026-11-24T00:00:00Z", false},
		{"2026-11-23", "2026-11-23T08:00:00Z", true},
		{"2026-11-23T08:00:00Z", "2026-11-23T08:00:00Z", true},
	}
	for _, tt := range tests {
		match, ok := parseCreated(tt.expr)
		if !ok || match(at(tt.t)) != tt.want {
			t.Errorf("created=%s at %s: ok %v, want %v", tt.expr, tt.t, ok, tt.want)
		}
	}
	for _, bad := range []string{">=yesterday", "2026-13-01", "a..b", ">="} {
		if _, ok := parseCreated(bad); ok {
			t.Errorf("created=%s accepted", bad)
		}
	}
}
