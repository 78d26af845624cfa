package config

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// checkRef applies git's rules for reference names (git check-ref-format),
// so that a ref git would reject never reaches GitHub.
func checkRef(ref string) error {
	short := strings.TrimPrefix(strings.TrimPrefix(ref, "refs/heads/"), "refs/tags/")
	switch {
	case !utf8.ValidString(ref):
		return fmt.Errorf("%q is not valid UTF-8", ref)
	case short == "" || short == "@":
		return fmt.Errorf("%q is not a branch or tag name", ref)
	case strings.HasPrefix(ref, "-"):
		return fmt.Errorf("%q must not start with '-'", ref)
	case strings.HasPrefix(ref, "/") || strings.HasSuffix(ref, "/") || strings.Contains(ref, "//"):
		return fmt.Errorf("%q must not start or end with '/' or contain '//'", ref)
	case strings.HasSuffix(ref, "."):
		return fmt.Errorf("%q must not end with '.'", ref)
	case strings.Contains(ref, ".."):
		return fmt.Errorf("%q must not contain '..'", ref)
	case strings.Contains(ref, "@{"):
		return fmt.Errorf("%q must not contain '@{'", ref)
	}
	for _, part := range strings.Split(ref, "/") {
		if strings.HasPrefix(part, ".") || strings.HasSuffix(part, ".lock") {
			return fmt.Errorf("%q has a component starting with '.' or ending with '.lock'", ref)
		}
	}
	for _, c := range ref {
		if c < 0x20 || c == 0x7f || strings.ContainsRune(" ~^:?*[\\", c) {
			return fmt.Errorf("%q contains %q, which git does not allow in ref names", ref, c)
		}
	}
	return nil
}
