package credentials

import (
	"errors"
	"fmt"
	"io"
	"os"

	"go.yaml.in/yaml/v3"
)

const (
	// MaxPrivateKeyBytes caps a GitHub App private key, from a file or
	// inline: GitHub issues 2048-bit RSA keys (about 1.7 KiB of PEM) and
	// 64 KiB holds even a 16384-bit one, so anything larger is the wrong
	// file (a log, /dev/zero) and is refused before it fills memory.
	MaxPrivateKeyBytes = 64 << 10
	// MaxCredentialsFileBytes caps a file of Secret manifests
	// (--credentials-file): a Kargo Git-credential Secret is a few KiB and
	// Kubernetes holds any one Secret to 1 MiB, while decoding YAML costs up
	// to ~100 bytes of memory per byte read (measured on hostile shapes
	// such as 4 MiB of "- {}" lines: 320-430 MB), so 1 MiB keeps that near
	// 100 MB.
	MaxCredentialsFileBytes = 1 << 20
	// maxMappingKeys caps the keys of one YAML mapping: the YAML decoder
	// checks them for duplicates in time quadratic in their number (256 KiB
	// of "kN: v" lines took a second, 900 KiB half a minute); no Secret
	// comes close.
	maxMappingKeys = 1000
)

// ErrTooLarge means an input was refused for its size (see TooLargeError).
var ErrTooLarge = errors.New("input too large")

// TooLargeError names an input refused for its size. It is refused, not
// cut: a cut key or manifest would fail later for a reason that misleads.
type TooLargeError struct {
	What  string
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s: more than %d KiB (the limit); refusing it rather than reading part of it", e.What, e.Limit>>10)
}

func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

// ReadFileLimited reads the file at path if it holds at most limit bytes.
// Errors name the file, not its contents.
func ReadFileLimited(path string, limit int64) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	if st, err := fh.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > limit {
		return nil, tooLarge(path, limit)
	}
	b, err := readLimited(fh, limit)
	if errors.Is(err, ErrTooLarge) {
		return nil, tooLarge(path, limit)
	}
	return b, err
}

func tooLarge(what string, limit int64) error { return &TooLargeError{What: what, Limit: limit} }

// readLimited reads r to its end, or stops with ErrTooLarge at the first
// byte past limit: memory stays within limit whatever r is (/dev/zero).
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, ErrTooLarge
	}
	return b, nil
}

// checkMappings refuses a document with a mapping of more than
// maxMappingKeys keys before it is decoded. Aliases are not followed: the
// mapping they name is checked where it is defined.
func checkMappings(n *yaml.Node) error {
	if n.Kind == yaml.MappingNode && len(n.Content)/2 > maxMappingKeys {
		return fmt.Errorf("the mapping at line %d has more than %d keys", n.Line, maxMappingKeys)
	}
	for _, c := range n.Content {
		if err := checkMappings(c); err != nil {
			return err
		}
	}
	return nil
}
