// Package docblock keeps a generated block of a document in step with the
// code it describes: tests render the block from the code and either check
// the document or, when asked, rewrite the block.
package docblock

import (
	"bytes"
	"fmt"
	"os"
)

// Sync checks that the block between <!-- name:start --> and
// <!-- name:end --> in path is content. With update it rewrites the block
// instead of failing.
func Sync(path, name, content string, update bool) error {
	start, end := "<!-- "+name+":start -->\n", "<!-- "+name+":end -->"
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	i, j := bytes.Index(doc, []byte(start)), bytes.Index(doc, []byte(end))
	if i < 0 || j < i {
		return fmt.Errorf("%s lacks the %s markers", path, name)
	}
	if string(doc[i+len(start):j]) == content {
		return nil
	}
	if !update {
		return fmt.Errorf("%s is out of date with the code (%s); rerun the test with -update-docs", path, name)
	}
	out := append(append(append([]byte{}, doc[:i+len(start)]...), content...), doc[j:]...)
	return os.WriteFile(path, out, 0o644)
}
