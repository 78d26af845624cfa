package yamlnode

import (
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestGetAndScalar(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("a: x\nb: null\nc: [1]\nd: ''\n"), &doc); err != nil {
		t.Fatal(err)
	}
	m := doc.Content[0]
	cases := []struct {
		key     string
		present bool
		scalar  string
	}{
		{"a", true, "x"},
		{"b", true, ""}, // null is no text
		{"c", true, ""}, // a sequence is no scalar
		{"d", true, ""},
		{"e", false, ""},
	}
	for _, tc := range cases {
		n := Get(m, tc.key)
		if (n != nil) != tc.present || Scalar(n) != tc.scalar {
			t.Errorf("%s: node %v, scalar %q; want present %t, scalar %q", tc.key, n, Scalar(n), tc.present, tc.scalar)
		}
	}
	if Get(m.Content[5], "x") != nil || Get(nil, "a") != nil {
		t.Error("Get of a non-mapping is not nil")
	}
}
