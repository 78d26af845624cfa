package safetext

import (
	"strings"
	"testing"
)

func TestClean(t *testing.T) {
	Register("s3cr3t-registered-value", "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx1y2z3\n-----END RSA PRIVATE KEY-----")
	tests := []struct {
		name, in string
		absent   []string
		present  []string
	}{
		{"ansi escapes", "Validation \x1b[31mFailed\x1b[0m\x1b]0;title\x07", []string{"\x1b", "\x07"}, []string{"Validation Failed"}},
		{"newlines and controls", "a\nb\rc\x00d\u202ee", []string{"\n", "\r", "\x00", "\u202e"}, []string{"a b c"}},
		{"echoed authorization header", "bad header Authorization: Bearer ghs_abcdefghijklmnop1234567890", []string{"ghs_abcdef"}, []string{"Bearer " + Redacted}},
		{"classic token", "token ghp_0123456789abcdefghijABCDEFGHIJ0123 leaked", []string{"ghp_0123"}, []string{Redacted}},
		{"fine-grained token", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", []string{"github_pat_11"}, []string{Redacted}},
		{"jwt", "jwt eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiIxMjMifQ.c2lnbmF0dXJl end", []string{"eyJhbGci"}, []string{"end"}},
		{"registered secret", "the value s3cr3t-registered-value echoed", []string{"s3cr3t"}, []string{Redacted}},
		{"registered key line", "key MIIEowIBAAKCAQEAx1y2z3 echoed", []string{"MIIEow"}, []string{Redacted}},
		{"invalid utf-8", "bad \xff byte", []string{"\xff"}, []string{"bad"}},
		{"plain text kept", "Workflow does not have 'workflow_dispatch' trigger", nil, []string{"Workflow does not have 'workflow_dispatch' trigger"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Clean(tt.in)
			for _, a := range tt.absent {
				if strings.Contains(got, a) {
					t.Errorf("%q still contains %q", got, a)
				}
			}
			for _, p := range tt.present {
				if !strings.Contains(got, p) {
					t.Errorf("%q lacks %q", got, p)
				}
			}
		})
	}
}
