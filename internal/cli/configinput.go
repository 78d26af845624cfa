package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/kargo-gha/kargo-gha/internal/failure"
)

// readConfig reads a step config block from a file ("-" for stdin) or a JSON
// string. Numbers keep the digits written (1.10 stays "1.10"), because
// workflow inputs are strings and a lost digit changes a version.
func readConfig(f *Factory, file, inline string) (map[string]any, error) {
	var (
		data []byte
		name string
		err  error
	)
	switch {
	case file != "" && inline != "":
		return nil, failure.Final(errors.New("use either --config or --config-json, not both"))
	case file == "-":
		name = "standard input"
		data, err = readLimited(f.IO.In)
	case file != "":
		name = file
		data, err = readFileLimited(file)
	case inline != "":
		name, data = "--config-json", []byte(inline)
		if len(data) > maxConfigBytes {
			err = errTooLarge
		}
	default:
		return map[string]any{}, nil
	}
	if err != nil {
		return nil, failure.Final(fmt.Errorf("reading the configuration from %s: %w", name, err))
	}
	cfg, err := decodeConfig(data)
	if err != nil {
		return nil, failure.Final(fmt.Errorf("the configuration in %s is not valid YAML or JSON: %w", name, err))
	}
	return cfg, nil
}

const (
	// maxConfigBytes bounds a configuration: a step config is a few KiB,
	// and GitHub takes at most 64 KiB of inputs. A larger one is refused,
	// never cut.
	maxConfigBytes = 256 << 10
	// maxConfigValues bounds the values a configuration expands to, aliases
	// included: a YAML alias bomb stops here instead of filling memory.
	maxConfigValues = 20000
	// maxConfigDepth bounds nesting; a step config is three levels deep.
	maxConfigDepth = 32
)

var errTooLarge = fmt.Errorf("it is larger than %d KiB; a step configuration is a few KiB", maxConfigBytes>>10)

func readFileLimited(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return readLimited(fh)
}

// readLimited reads all of r, or fails when r holds more than
// maxConfigBytes.
func readLimited(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxConfigBytes+1))
	if err == nil && len(data) > maxConfigBytes {
		return nil, errTooLarge
	}
	return data, err
}

// decodeConfig parses YAML (and so JSON) into plain Go values. A document
// that is a Kargo step (with uses: and config:) is accepted too: its config
// block is taken.
func decodeConfig(data []byte) (map[string]any, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return map[string]any{}, nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	v, err := (&nodeDecoder{budget: maxConfigValues}).value(&doc, 0)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("the configuration must be a mapping of fields")
	}
	if inner, ok := m["config"].(map[string]any); ok && m["uses"] != nil {
		return inner, nil
	}
	return m, nil
}

// nodeDecoder turns YAML nodes into plain values within a budget of values
// and a depth: aliases are expanded, so a small document can stand for an
// enormous one.
type nodeDecoder struct{ budget int }

func (d *nodeDecoder) value(n *yaml.Node, depth int) (any, error) {
	d.budget--
	switch {
	case d.budget < 0:
		return nil, fmt.Errorf("it expands to more than %d values (YAML aliases?); a step configuration has a few dozen", maxConfigValues)
	case depth > maxConfigDepth:
		return nil, fmt.Errorf("line %d: nested more than %d levels deep", n.Line, maxConfigDepth)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return map[string]any{}, nil
		}
		return d.value(n.Content[0], depth+1)
	case yaml.AliasNode:
		return d.value(n.Alias, depth+1)
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			var key string
			if err := n.Content[i].Decode(&key); err != nil {
				return nil, fmt.Errorf("line %d: keys must be strings", n.Content[i].Line)
			}
			if _, dup := out[key]; dup {
				return nil, fmt.Errorf("line %d: field %q is given twice", n.Content[i].Line, key)
			}
			v, err := d.value(n.Content[i+1], depth+1)
			if err != nil {
				return nil, err
			}
			out[key] = v
		}
		return out, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := d.value(c, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	switch n.ShortTag() {
	case "!!int", "!!float":
		// Keep the literal when it is a JSON number (1.10, 1000000);
		// otherwise (0x1F, 1_000, .inf) take YAML's value.
		if json.Valid([]byte(n.Value)) {
			if _, err := strconv.ParseFloat(n.Value, 64); err == nil {
				return json.Number(n.Value), nil
			}
		}
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, err
		}
		return v, nil
	default:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, err
		}
		return v, nil
	}
}

// overlay puts the fields the flags give over the configuration's. An
// object (inputs) is merged key by key, so that --input adds to the inputs
// of a file rather than replacing them all.
func overlay(cfg, flags map[string]any) map[string]any {
	for k, v := range flags {
		sub, isMap := v.(map[string]any)
		base, baseIsMap := cfg[k].(map[string]any)
		if isMap && baseIsMap {
			cfg[k] = overlay(base, sub)
			continue
		}
		cfg[k] = v
	}
	return cfg
}
