// Package yamlnode reads values out of parsed YAML nodes (go.yaml.in/yaml/v3)
// without decoding them, so that callers keep line numbers and can tell a
// missing key from an empty one: migrate edits a manifest in place, and the
// workflow-file check reports where a trigger or an input is declared.
package yamlnode

import "go.yaml.in/yaml/v3"

// Get is the value of key in the mapping node m, or nil when m is not a
// mapping or has no such key.
func Get(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// Scalar is n's text when n is a scalar other than null, else "".
func Scalar(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return ""
	}
	return n.Value
}
