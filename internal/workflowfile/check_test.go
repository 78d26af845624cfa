package workflowfile

import (
	"fmt"
	"strings"
	"testing"
)

const deployYAML = `name: Deploy
run-name: Deploy ${{ inputs.environment }} (${{ github.event.inputs.dispatch_key }})
on:
  push:
    branches: [main]
  workflow_dispatch:
    inputs:
      environment:
        type: choice
        options: [dev, staging, prod]
        required: true
      dry:
        type: boolean
        default: false
      replicas:
        type: number
        required: true
        default: 2
      image_tag:
        required: true
      dispatch_key:
        type: string
jobs:
  deploy:
    runs-on: ubuntu-latest
    steps:
      - run: echo
`

func TestTriggerForms(t *testing.T) {
	cases := []struct {
		on   string
		want bool
	}{
		{"on: workflow_dispatch", true},
		{"on: push", false},
		{"on: [push, workflow_dispatch]", true},
		{"on: [push, pull_request]", false},
		{"on:\n  workflow_dispatch:", true},
		{"on:\n  workflow_dispatch: null", true},
		{"on:\n  workflow_dispatch: ~", true},
		{"on:\n  workflow_dispatch: {}", true},
		{"on:\n  push: {}", false},
		{"true: workflow_dispatch", true}, // a YAML 1.1 reader's "on"
		{"name: no trigger at all", false},
	}
	for _, tc := range cases {
		f, err := Parse([]byte(tc.on + "\njobs: {}\n"))
		if err != nil {
			t.Fatalf("%q: %v", tc.on, err)
		}
		if f.Dispatchable != tc.want {
			t.Errorf("%q: dispatchable %t, want %t", tc.on, f.Dispatchable, tc.want)
		}
	}
}

func TestCheckReportsEveryProblemAtOnce(t *testing.T) {
	f, err := Parse([]byte(deployYAML))
	if err != nil {
		t.Fatal(err)
	}
	manyInputs := map[string]Value{}
	for i := range 26 {
		manyInputs[fmt.Sprintf("x%02d", i)] = Value{Text: "1"}
	}
	cases := []struct {
		name       string
		d          Dispatch
		want       []string // substrings of the problems, in order
		notChecked []string
	}{
		{
			name: "clean",
			d:    Dispatch{Inputs: map[string]Value{"environment": {Text: "prod"}, "image_tag": {Text: "1.10"}}, CorrelationInput: "dispatch_key"},
		},
		{
			name: "every mistake",
			d: Dispatch{Inputs: map[string]Value{
				"environment": {Text: "production"}, "dry": {Text: "yes"}, "replicas": {Text: "three"}, "imagetag": {Text: "1"},
			}, CorrelationInput: "environment_key"},
			want: []string{
				`inputs.dry: "yes" is not a boolean`,
				`inputs.environment: "production" is not one of the choice's options (dev, staging, prod)`,
				"inputs.imagetag: the workflow does not declare this input; it declares dispatch_key, dry, environment, image_tag, replicas",
				`inputs.replicas: "three" is not a number`,
				"inputs.image_tag: the workflow requires this input and declares no default",
				`correlationInput: "environment_key" is not a declared input`,
				"correlationInput: the workflow's run-name",
			},
		},
		{
			name:       "expressions are not checked, never guessed",
			d:          Dispatch{Inputs: map[string]Value{"environment": {Text: "${{ ctx.stage }}", Unknown: true}, "image_tag": {Text: "${{ imageFrom(vars.repo).Tag }}", Unknown: true}, "nope": {Unknown: true}}},
			want:       []string{"inputs.nope: the workflow does not declare this input"},
			notChecked: []string{"inputs.environment", "inputs.image_tag"},
		},
		{
			name: "more than 25 inputs",
			d:    Dispatch{Inputs: manyInputs},
			want: []string{"inputs: 26 inputs would be sent; GitHub takes at most 25"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			problems, notChecked := Check(f, tc.d)
			if tc.name == "more than 25 inputs" {
				problems = problems[:1] // the undeclared ones follow
			}
			if len(problems) != len(tc.want) {
				t.Fatalf("problems %v, want %d: %v", problems, len(tc.want), tc.want)
			}
			for i, p := range problems {
				if !strings.Contains(p.String(), tc.want[i]) {
					t.Errorf("problem %d is %q, want it to contain %q", i, p, tc.want[i])
				}
			}
			if strings.Join(notChecked, ",") != strings.Join(tc.notChecked, ",") {
				t.Errorf("not checked %v, want %v", notChecked, tc.notChecked)
			}
		})
	}
}

func TestNoDispatchTriggerIsAProblem(t *testing.T) {
	f, err := Parse([]byte("on: push\njobs: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	problems, _ := Check(f, Dispatch{})
	if len(problems) != 1 || problems[0].Field != "workflowFile" || !strings.Contains(problems[0].Message, "no workflow_dispatch trigger") {
		t.Fatalf("problems %v", problems)
	}
}

func TestRunNameCarries(t *testing.T) {
	cases := []struct {
		runName string
		want    bool
	}{
		{"Deploy ${{ inputs.key }}", true},
		{"Deploy ${{inputs.key}}", true},
		{"Deploy ${{ github.event.inputs.key }}", true},
		{"Deploy ${{ format('{0}', inputs.key) }}", true},
		{"Deploy inputs.key", false},          // not in an expression
		{"Deploy ${{ inputs.key_2 }}", false}, // another input
		{"Deploy ${{ inputs.keys }}", false},  // another input
		{"Deploy ${{ xinputs.key }}", false},  // not the inputs context
		{"Deploy ${{ inputs.key-x }}", false}, // another input
		{"", false},
	}
	for _, tc := range cases {
		if got := RunNameCarries(tc.runName, "key"); got != tc.want {
			t.Errorf("RunNameCarries(%q) = %t, want %t", tc.runName, got, tc.want)
		}
	}
}

func TestOversizedFileIsRefused(t *testing.T) {
	if _, err := Parse(make([]byte, MaxFileBytes+1)); err == nil {
		t.Fatal("a file over the limit was parsed")
	}
}
