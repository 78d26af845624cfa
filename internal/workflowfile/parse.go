// Package workflowfile reads a GitHub Actions workflow file, as a dry run
// of a dispatch needs it: whether it has a workflow_dispatch trigger, the
// inputs that trigger declares, and its run-name. It checks a dispatch's
// inputs against them and reports every problem at once. It knows GitHub
// Actions and nothing of Kargo.
package workflowfile

import (
	"errors"
	"fmt"
	"sort"

	"go.yaml.in/yaml/v3"

	"github.com/kargo-gha/kargo-gha/internal/yamlnode"
)

// MaxFileBytes bounds a workflow file read: the contents API inlines files
// up to 1 MB, and a workflow file near that is already far past any real
// one.
const MaxFileBytes = 1 << 20

// MaxInputs is how many inputs a workflow_dispatch takes on github.com and
// GHES 3.21 and later (10 on older GHES); GitHub refuses a dispatch with
// more.
const MaxInputs = 25

// Input types a workflow_dispatch input may declare.
const (
	TypeString      = "string"
	TypeBoolean     = "boolean"
	TypeNumber      = "number"
	TypeChoice      = "choice"
	TypeEnvironment = "environment"
)

// File is what a dry run needs of a workflow file.
type File struct {
	Name    string
	RunName string
	// Dispatchable: the file has a workflow_dispatch trigger.
	Dispatchable bool
	// Inputs are the trigger's declared inputs, by name.
	Inputs map[string]Input
}

// Input is one declared workflow_dispatch input.
type Input struct {
	Name       string
	Type       string // TypeString when not declared
	Required   bool
	HasDefault bool
	Options    []string // of a choice
}

// Declared are the declared input names, sorted.
func (f *File) Declared() []string {
	names := make([]string, 0, len(f.Inputs))
	for n := range f.Inputs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Parse reads a workflow file's YAML.
func Parse(content []byte) (*File, error) {
	if len(content) > MaxFileBytes {
		return nil, fmt.Errorf("the workflow file is %d bytes, more than the %d read", len(content), MaxFileBytes)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(content, &doc); err != nil {
		return nil, fmt.Errorf("the workflow file is not valid YAML: %w", err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("the workflow file is not a YAML mapping")
	}
	root := doc.Content[0]
	f := &File{Inputs: map[string]Input{}}
	f.Name = yamlnode.Scalar(yamlnode.Get(root, "name"))
	f.RunName = yamlnode.Scalar(yamlnode.Get(root, "run-name"))
	// YAML 1.1 reads a bare on as true; GitHub reads it as the key "on".
	on := yamlnode.Get(root, "on")
	if on == nil {
		on = yamlnode.Get(root, "true")
	}
	trigger, ok := dispatchTrigger(on)
	f.Dispatchable = ok
	f.readInputs(yamlnode.Get(trigger, "inputs"))
	return f, nil
}

// dispatchTrigger finds workflow_dispatch in the forms on: takes: a string
// (on: workflow_dispatch), a list of event names, or a mapping whose
// workflow_dispatch value may be null. node is the trigger's own mapping,
// when it has one.
func dispatchTrigger(on *yaml.Node) (node *yaml.Node, ok bool) {
	if on == nil {
		return nil, false
	}
	switch on.Kind {
	case yaml.ScalarNode:
		return nil, on.Value == "workflow_dispatch"
	case yaml.SequenceNode:
		for _, n := range on.Content {
			if n.Kind == yaml.ScalarNode && n.Value == "workflow_dispatch" {
				return nil, true
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(on.Content); i += 2 {
			if on.Content[i].Value == "workflow_dispatch" {
				v := on.Content[i+1]
				if v.Kind == yaml.MappingNode {
					return v, true
				}
				return nil, true
			}
		}
	}
	return nil, false
}

func (f *File) readInputs(inputs *yaml.Node) {
	if inputs == nil || inputs.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(inputs.Content); i += 2 {
		name, def := inputs.Content[i].Value, inputs.Content[i+1]
		in := Input{Name: name, Type: TypeString}
		if def.Kind == yaml.MappingNode {
			if t := yamlnode.Scalar(yamlnode.Get(def, "type")); t != "" {
				in.Type = t
			}
			in.Required = yamlnode.Scalar(yamlnode.Get(def, "required")) == "true"
			in.HasDefault = yamlnode.Get(def, "default") != nil && yamlnode.Get(def, "default").Tag != "!!null"
			if opts := yamlnode.Get(def, "options"); opts != nil && opts.Kind == yaml.SequenceNode {
				for _, o := range opts.Content {
					in.Options = append(in.Options, o.Value)
				}
			}
		}
		f.Inputs[name] = in
	}
}
