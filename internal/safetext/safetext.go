// Package safetext makes text fit to show: what a server or a config says
// may carry terminal escapes, control characters, or a secret (a token
// echoed back in an error). Clean removes the first two and redacts every
// secret this process registered, and anything shaped like a GitHub token
// or a JWT, whatever its source.
package safetext

import (
	"regexp"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Redacted replaces a secret in cleaned text.
const Redacted = "[REDACTED]"

// maxSecrets bounds the registry: a controller minting App tokens for
// weeks registers one per hour and installation.
const maxSecrets = 4096

var (
	mu      sync.RWMutex
	secrets []string
)

// minSecretLen keeps short strings (which would redact ordinary words)
// out of the registry; every real credential is longer.
const minSecretLen = 8

// Register adds secrets (tokens, JWTs, private keys) that Clean must never
// let through. Multi-line secrets (PEM keys) are registered line by line.
func Register(values ...string) {
	mu.Lock()
	defer mu.Unlock()
	for _, v := range values {
		for _, line := range strings.Split(v, "\n") {
			line = strings.TrimSpace(line)
			if len(line) < minSecretLen || strings.HasPrefix(line, "-----") || contains(secrets, line) {
				continue
			}
			if len(secrets) >= maxSecrets {
				secrets = secrets[len(secrets)/4:]
			}
			secrets = append(secrets, line)
		}
	}
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

// tokenShaped matches credentials by their form: GitHub tokens (ghp_, gho_,
// ghu_, ghs_, ghr_, github_pat_), JWTs, and whatever follows "Bearer" or
// "token" in an Authorization header echoed back.
var tokenShaped = regexp.MustCompile(`(?i)\b(gh[pousr]_[A-Za-z0-9_]{16,}|github_pat_[A-Za-z0-9_]{16,}|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)|((?:bearer|token|basic)\s+)[A-Za-z0-9_.~+/=-]{8,}`)

// escapes matches ANSI/VT escape sequences (CSI, OSC and two-byte forms).
var escapes = regexp.MustCompile(`\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|[@-Z\\-_])`)

// Clean returns s with escapes and control characters removed (newlines
// and tabs become spaces), invalid UTF-8 replaced, and secrets redacted.
func Clean(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	s = escapes.ReplaceAllString(s, "")
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t' || r == '\r':
			return ' '
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r):
			return -1
		}
		return r
	}, s)
	return Redact(s)
}

// Redact replaces registered secrets and token-shaped strings in s, and
// leaves everything else as it is.
func Redact(s string) string {
	mu.RLock()
	for _, sec := range secrets {
		if strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, Redacted)
		}
	}
	mu.RUnlock()
	return tokenShaped.ReplaceAllStringFunc(s, func(m string) string {
		sub := tokenShaped.FindStringSubmatch(m)
		if sub[2] != "" {
			return sub[2] + Redacted
		}
		return Redacted
	})
}
