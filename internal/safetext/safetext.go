// Package safetext makes text fit to show: what a server or a config says
// may carry terminal escapes, control characters, or a secret (a token
// echoed back in an error). Clean removes the first two and redacts every
// secret this process registered, anything shaped like a GitHub token or a
// JWT, and the user and password of a URL, whatever its source. CleanValue
// does the same to every string of an output value.
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

// knownToken is the form of GitHub tokens (ghp_, gho_, ghu_, ghs_, ghr_,
// github_pat_) and of JWTs.
const knownToken = `gh[pousr]_[A-Za-z0-9_]{16,}|github_pat_[A-Za-z0-9_]{16,}|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*`

var knownTokenOnly = regexp.MustCompile(`^(?:` + knownToken + `)$`)

// tokenShaped matches credentials by their form: a known token (group 1),
// or the word after "Bearer", "token" or "basic" (groups 2 and 3), which is
// redacted only if it looks like a credential (looksLikeCredential):
// "Bearer authentication" and "the token unencrypted" are the project's own
// words.
var tokenShaped = regexp.MustCompile(`(?i)\b(` + knownToken + `)|\b((?:bearer|token|basic)\s+)([A-Za-z0-9_.~+/=-]{8,})`)

// longTokenLen is the length from which a single run of a token alphabet is
// taken for a credential whatever its letters: English words this long are
// rare, while an opaque token is rarely shorter.
const longTokenLen = 20

// looksLikeCredential tells a token, a base64 value or a hex string from a
// word: it has a digit, base64's '+' or '=', upper case inside it more
// than once next to lower case (as base64 has, and "GitHub" has not), or is
// one long run of a token alphabet.
func looksLikeCredential(v string) bool {
	if strings.ContainsAny(v, "0123456789+=") {
		return true
	}
	inner, lower := 0, false
	for i, r := range v {
		lower = lower || unicode.IsLower(r)
		if i > 0 && unicode.IsUpper(r) {
			inner++
		}
	}
	if inner >= 2 && lower {
		return true
	}
	return len(v) >= longTokenLen && !strings.ContainsAny(v, "./~")
}

// userInfo matches the user information of a URL with a password,
// "scheme://user:password@": a proxy URL from HTTPS_PROXY, quoted whole in
// an error. The password part runs to the last '@' of the word, as a
// password may hold characters a URL should have escaped.
var userInfo = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.-]*://)[^\s/?#@"'<>]*:[^\s"'<>]*@`)

// secretParam matches a credential passed as a parameter, in a URL's query
// or a "key=value" line: "?token=…", "&access_token=…", "password=…",
// "client_secret=…", "sig=…" (a signed blob URL's signature). Group 1 is the
// name and "=", kept; the value runs to the next separator.
var secretParam = regexp.MustCompile(`(?i)\b((?:access_token|refresh_token|id_token|token|password|passwd|pwd|client_secret|secret|api_key|apikey|sig|signature)=)[^\s&;#"'<>]+`)

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
	s = userInfo.ReplaceAllString(s, "${1}"+Redacted+"@")
	s = secretParam.ReplaceAllString(s, "${1}"+Redacted)
	return tokenShaped.ReplaceAllStringFunc(s, func(m string) string {
		sub := tokenShaped.FindStringSubmatch(m)
		switch {
		case sub[1] != "":
			return Redacted
		case looksLikeCredential(sub[3]) || knownTokenOnly.MatchString(sub[3]):
			return sub[2] + Redacted
		}
		return m
	})
}
