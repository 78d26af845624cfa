package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// overlayDir is the install example: the kustomize overlay that points
// Kargo's controller at the image with the steps.
var overlayDir = filepath.Join("..", "..", "examples", "kargo-controller-image")

// helmOutput is the shape of what Kargo's chart renders, as far as the
// overlay is concerned: the controller's Deployment (its container
// controller, and the init container the chart adds for a CA bundle, on the
// same image), the API server's and another component's.
const helmOutput = `apiVersion: v1
kind: ServiceAccount
metadata:
  name: kargo-controller
  namespace: kargo
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: kargo-api
  namespace: kargo
  labels:
    app.kubernetes.io/component: api
spec:
  replicas: 1
  selector:
    matchLabels:
      app.kubernetes.io/component: api
  template:
    metadata:
      labels:
        app.kubernetes.io/component: api
    spec:
      serviceAccount: kargo-api
      containers:
      - name: api
        image: ghcr.io/akuity/kargo:v1.11.2
        imagePullPolicy: IfNotPresent
        command: ["/sbin/tini", "--", "/usr/local/bin/kargo"]
        args: ["api"]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: kargo-controller
  namespace: kargo
  labels:
    app.kubernetes.io/component: controller
spec:
  replicas: 1
  strategy:
    type: Recreate
  selector:
    matchLabels:
      app.kubernetes.io/component: controller
  template:
    metadata:
      labels:
        app.kubernetes.io/component: controller
    spec:
      serviceAccount: kargo-controller
      containers:
      - name: controller
        image: ghcr.io/akuity/kargo:v1.11.2
        imagePullPolicy: IfNotPresent
        command: ["/sbin/tini", "--", "/usr/local/bin/kargo"]
        args: ["controller"]
        envFrom:
        - configMapRef:
            name: kargo-controller
        volumeMounts:
        - mountPath: /tmp
          name: tmp-data
      initContainers:
      - name: parse-cabundle
        image: ghcr.io/akuity/kargo:v1.11.2
        command: ["/bin/sh", "-c"]
        args: ["update-ca-certificates"]
      volumes:
      - name: tmp-data
        emptyDir: {}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: kargo-webhooks-server
  namespace: kargo
spec:
  selector:
    matchLabels:
      app.kubernetes.io/component: webhooks-server
  template:
    metadata:
      labels:
        app.kubernetes.io/component: webhooks-server
    spec:
      containers:
      - name: webhooks-server
        image: ghcr.io/akuity/kargo:v1.11.2
        args: ["kubernetes-webhooks-server"]
`

// kustomizeBuild renders the overlay over manifests with kustomize's own
// API, on an in-memory file system holding the overlay's files.
func kustomizeBuild(t *testing.T, dir, manifests string) resmap.ResMap {
	t.Helper()
	fs := filesys.MakeFsInMemory()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := fs.WriteFile(filepath.Join("/overlay", e.Name()), b); err != nil {
			t.Fatal(err)
		}
	}
	if err := fs.WriteFile("/overlay/helm-output.yaml", []byte(manifests)); err != nil {
		t.Fatal(err)
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, "/overlay")
	if err != nil {
		t.Fatalf("kustomize build: %v", err)
	}
	return m
}

// patchedImage is the image the example's patch sets.
func patchedImage(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(overlayDir, "controller-image.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var patch struct {
		Kind     string
		Metadata struct{ Name string }
		Spec     struct {
			Template struct {
				Spec struct {
					Containers []struct{ Name, Image string }
				}
			}
		}
	}
	if err := yaml.Unmarshal(b, &patch); err != nil {
		t.Fatal(err)
	}
	c := patch.Spec.Template.Spec.Containers
	if patch.Kind != "Deployment" || patch.Metadata.Name != "kargo-controller" || len(c) != 1 || c[0].Name != "controller" || c[0].Image == "" {
		t.Fatalf("the patch is not an image for the kargo-controller Deployment's controller container: %s", b)
	}
	return c[0].Image
}

// docs splits a multi-document YAML stream into objects, keyed by kind/name.
func docs(t *testing.T, stream string) (map[string]map[string]any, []string) {
	t.Helper()
	objs := map[string]map[string]any{}
	var order []string
	for _, d := range strings.Split(stream, "\n---\n") {
		var o map[string]any
		if err := yaml.Unmarshal([]byte(d), &o); err != nil {
			t.Fatal(err)
		}
		md, _ := o["metadata"].(map[string]any)
		k := fmt.Sprintf("%s/%s", o["kind"], md["name"])
		objs[k] = o
		order = append(order, k)
	}
	return objs, order
}

// checkRendered: the controller's container controller is on the patched
// image, and nothing else changed (the API server, the init container,
// every other field and object).
func checkRendered(t *testing.T, rendered string, image string) {
	t.Helper()
	in, inOrder := docs(t, helmOutput)
	out, outOrder := docs(t, rendered)
	if !reflect.DeepEqual(inOrder, outOrder) {
		t.Errorf("objects %v, want the chart's %v", outOrder, inOrder)
	}
	want := in["Deployment/kargo-controller"]
	containers := want["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)
	containers[0].(map[string]any)["image"] = image
	for k, o := range in {
		if !reflect.DeepEqual(out[k], o) {
			got, _ := yaml.Marshal(out[k])
			exp, _ := yaml.Marshal(o)
			t.Errorf("%s:\n%s\nwant:\n%s", k, got, exp)
		}
	}
	if !strings.Contains(rendered, "image: "+image) || strings.Count(rendered, "image: "+image) != 1 {
		t.Errorf("the patched image appears %d times, want once", strings.Count(rendered, "image: "+image))
	}
}

// TestControllerImageOverlay renders examples/kargo-controller-image with
// kustomize's API over manifests of the chart's shape.
func TestControllerImageOverlay(t *testing.T) {
	image := patchedImage(t)
	m := kustomizeBuild(t, overlayDir, helmOutput)
	rendered, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	checkRendered(t, strings.TrimSpace(string(rendered)), image)
}

// TestControllerImagePostRenderer runs the example's Helm post-renderer as
// Helm does (the chart's manifests on stdin), with this test binary standing
// in for the kustomize command (see TestMain): kustomize's own API again.
func TestControllerImagePostRenderer(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	if err := os.Symlink(self, filepath.Join(bin, "kustomize")); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadDir(overlayDir)
	if err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs(filepath.Join(overlayDir, "post-render.sh"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(script)
	cmd.Dir = t.TempDir() // Helm runs it from wherever helm runs.
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.Stdin = strings.NewReader(helmOutput)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("post-render.sh: %v\n%s", err, stderr.String())
	}
	checkRendered(t, strings.TrimSpace(stdout.String()), patchedImage(t))
	if after, _ := os.ReadDir(overlayDir); len(after) != len(before) {
		t.Errorf("post-render.sh left files in %s: %v", overlayDir, after)
	}
}

// TestMain makes the test binary the kustomize command when it is run by
// that name (TestControllerImagePostRenderer): `kustomize build DIR`.
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == "kustomize" {
		if len(os.Args) != 3 || os.Args[1] != "build" {
			fmt.Fprintln(os.Stderr, "usage: kustomize build DIR")
			os.Exit(2)
		}
		out, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), os.Args[2])
		if err == nil {
			var b []byte
			if b, err = out.AsYaml(); err == nil {
				_, err = os.Stdout.Write(b)
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "kustomize:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
