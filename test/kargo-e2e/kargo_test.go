package e2e

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

const (
	kargoGroup = "kargo.akuity.io"
	// promotionWithin bounds one promotion: Kargo re-runs a Running step
	// no sooner than 10 s, and a promotion here takes two or three such
	// rounds (about 20 s); the rest is room for a loaded machine.
	promotionWithin = 4 * time.Minute
	// crdsEstablishedWithin: the API server establishes a CRD in a second
	// or two.
	crdsEstablishedWithin = time.Minute
)

var (
	crdGVR       = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	namespaceGVR = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	secretGVR    = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	freightGVR   = schema.GroupVersionResource{Group: kargoGroup, Version: "v1alpha1", Resource: "freights"}
	stageGVR     = schema.GroupVersionResource{Group: kargoGroup, Version: "v1alpha1", Resource: "stages"}
	promoGVR     = schema.GroupVersionResource{Group: kargoGroup, Version: "v1alpha1", Resource: "promotions"}
)

// kube is the test's view of the API server: a dynamic client, since
// Kargo's API module is not on the Go module proxy.
type kube struct {
	dyn dynamic.Interface
}

func newKube(kubeconfig string) (*kube, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &kube{dyn: dyn}, nil
}

// installCRDs creates every CustomResourceDefinition in dir (controller-gen's
// output for Kargo's api/v1alpha1) and waits until each is established.
func (k *kube) installCRDs(ctx context.Context, dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no CRDs in %s (%v)", dir, err)
	}
	var names []string
	for _, f := range files {
		obj, err := readObject(f)
		if err != nil {
			return nil, err
		}
		if _, err := k.dyn.Resource(crdGVR).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("creating the CRD in %s: %w", f, err)
		}
		names = append(names, obj.GetName())
	}
	for _, name := range names {
		err := poll(crdsEstablishedWithin, func() error {
			crd, err := k.dyn.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
			for _, c := range conds {
				if m, _ := c.(map[string]any); m["type"] == "Established" && m["status"] == "True" {
					return nil
				}
			}
			return fmt.Errorf("CRD %s is not established", name)
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(names)
	return names, nil
}

func readObject(file string) (*unstructured.Unstructured, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return parseObject(string(raw))
}

func parseObject(doc string) (*unstructured.Unstructured, error) {
	var m map[string]any
	if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
		return nil, fmt.Errorf("parsing %q: %w", firstLine(doc), err)
	}
	return &unstructured.Unstructured{Object: m}, nil
}

func firstLine(s string) string { line, _, _ := strings.Cut(strings.TrimSpace(s), "\n"); return line }

// create creates the object a YAML document describes.
func (k *kube) create(ctx context.Context, gvr schema.GroupVersionResource, doc string) (*unstructured.Unstructured, error) {
	obj, err := parseObject(doc)
	if err != nil {
		return nil, err
	}
	created, err := k.dyn.Resource(gvr).Namespace(obj.GetNamespace()).Create(ctx, obj, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("creating %s %s/%s: %w", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
	}
	return created, nil
}

// namespace creates a namespace; a Kargo project's namespace carries the
// project label (Kargo's management controller, not run here, would add
// it when it creates the namespace for a Project).
func (k *kube) namespace(ctx context.Context, name string, project bool) error {
	labels := ""
	if project {
		labels = "\n  labels: {kargo.akuity.io/project: \"true\"}"
	}
	_, err := k.create(ctx, namespaceGVR, fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s%s\n", name, labels))
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// gitSecret creates a Secret for Kargo's credentials database: type git,
// for exactly repoURL, holding data.
func (k *kube) gitSecret(ctx context.Context, ns, name, repoURL string, data map[string]string) error {
	all := map[string]string{"repoURL": repoURL}
	for key, v := range data {
		all[key] = v
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata":   map[string]any{"name": name, "namespace": ns, "labels": map[string]any{"kargo.akuity.io/cred-type": "git"}},
		"stringData": toAny(all),
	}}
	_, err := k.dyn.Resource(secretGVR).Namespace(ns).Create(ctx, obj, metav1.CreateOptions{})
	return err
}

// gitSecrets names the project's Git credentials Secrets and the URL each
// is for, for failure messages.
func (k *kube) gitSecrets(ctx context.Context, ns string) string {
	list, err := k.dyn.Resource(secretGVR).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: "kargo.akuity.io/cred-type=git"})
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, s := range list.Items {
		url, _, _ := unstructured.NestedString(s.Object, "data", "repoURL")
		raw, _ := base64.StdEncoding.DecodeString(url)
		out = append(out, s.GetName()+" for "+string(raw))
	}
	return strings.Join(out, ", ")
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// freight creates one piece of Freight from Warehouse my-app, with the
// name and alias Kargo's Freight webhook would give it (the webhook is not
// run): a content hash and its alias label.
func (k *kube) freight(ctx context.Context, ns, alias string) (string, error) {
	sum := sha1.Sum([]byte(ns + "/" + alias + "/ghcr.io/example/app:1.10"))
	name := hex.EncodeToString(sum[:])
	_, err := k.create(ctx, freightGVR, fmt.Sprintf(`apiVersion: kargo.akuity.io/v1alpha1
kind: Freight
metadata:
  name: %s
  namespace: %s
  labels: {kargo.akuity.io/alias: %s}
alias: %s
origin: {kind: Warehouse, name: my-app}
discoveredAt: %s
images:
- repoURL: ghcr.io/example/app
  tag: "1.10"
  digest: sha256:%x
`, name, ns, alias, alias, time.Now().UTC().Format(time.RFC3339), sha1.Sum([]byte(name))))
	return name, err
}

// stageSpec is one Stage's promotion: its steps as testdata/stage*.yaml
// give them, for the simulated repository repoURL.
type stageSpec struct {
	Namespace, Name, Shard, RepoURL string
	// Correlated adds correlationInput: dispatch_key to the dispatch step.
	Correlated bool
}

func (s stageSpec) yaml() string {
	shard, labels, corr := "", "", ""
	if s.Shard != "" {
		// The Stage webhook copies spec.shard into the shard label.
		shard = "\n  shard: " + s.Shard
		labels = "\n  labels: {kargo.akuity.io/shard: " + s.Shard + "}"
	}
	if s.Correlated {
		corr = "\n          correlationInput: dispatch_key"
	}
	return fmt.Sprintf(`apiVersion: kargo.akuity.io/v1alpha1
kind: Stage
metadata:
  name: %[1]s
  namespace: %[2]s%[3]s
spec:%[4]s
  requestedFreight:
  - origin: {kind: Warehouse, name: my-app}
    sources: {direct: true}
  promotionTemplate:
    spec:
      vars:
      - name: version
        value: "1.10"
      steps:
      - uses: gha-dispatch-workflow
        as: dispatch-deployment
        config:
          repoURL: %[5]s
          workflowFile: deploy.yml
          ref: main%[6]s
          inputs:
            environment: "${{ ctx.stage }}"
            promotion_id: "${{ ctx.promotion }}"
            deploy_version: "${{ quote(vars.version) }}"
          timeout: 120
      - uses: gha-wait-for-workflow
        as: wait-deployment
        config:
          repoURL: %[5]s
          runID: "${{ outputs['dispatch-deployment'].runID }}"
          expectedConclusion: success
          pollInterval: 10s
`, s.Name, s.Namespace, labels, shard, s.RepoURL, corr)
}

// promote creates the Stage and a Promotion of freight to it, as Kargo's
// API server and webhooks would: the Promotion named as Kargo names it
// (<stage>.<ULID>.<freight prefix>, which Kargo's ordering relies on), its
// steps and vars copied from the Stage's promotion template, labelled with
// the Stage and its shard, and owned by the Stage.
func (k *kube) promote(ctx context.Context, s stageSpec, freight string) (string, error) {
	stage, err := k.create(ctx, stageGVR, s.yaml())
	if err != nil {
		return "", err
	}
	tmpl, _, _ := unstructured.NestedMap(stage.Object, "spec", "promotionTemplate", "spec")
	name := strings.ToLower(s.Name + "." + ulid.Make().String() + "." + freight[:7])
	labels := map[string]any{"kargo.akuity.io/stage": s.Name}
	if s.Shard != "" {
		labels["kargo.akuity.io/shard"] = s.Shard
	}
	promo := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": kargoGroup + "/v1alpha1", "kind": "Promotion",
		"metadata": map[string]any{
			"name": name, "namespace": s.Namespace, "labels": labels,
			"annotations": map[string]any{"kargo.akuity.io/stage": s.Name},
			"ownerReferences": []any{map[string]any{
				"apiVersion": kargoGroup + "/v1alpha1", "kind": "Stage", "name": s.Name,
				"uid": string(stage.GetUID()), "controller": true, "blockOwnerDeletion": true,
			}},
		},
		"spec": map[string]any{"stage": s.Name, "freight": freight, "steps": tmpl["steps"], "vars": tmpl["vars"]},
	}}
	if _, err := k.dyn.Resource(promoGVR).Namespace(s.Namespace).Create(ctx, promo, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("creating Promotion %s: %w", name, err)
	}
	return name, nil
}

// promotionStatus is what a user reads in a Promotion's status.
type promotionStatus struct {
	Phase       string                    `json:"phase"`
	Message     string                    `json:"message"`
	CurrentStep int64                     `json:"currentStep"`
	State       map[string]map[string]any `json:"state"`
	Steps       []map[string]any          `json:"stepExecutionMetadata"`
}

func (s promotionStatus) terminal() bool {
	switch s.Phase {
	case "Succeeded", "Failed", "Errored", "Aborted":
		return true
	}
	return false
}

// output is one step's output as saved in the Promotion's state.
func (s promotionStatus) output(alias, key string) any { return s.State[alias][key] }

// runID is the dispatch step's runID output (a JSON number in the state).
func (s promotionStatus) runID() int64 {
	f, _ := s.output("dispatch-deployment", "runID").(float64)
	return int64(f)
}

func (k *kube) status(ctx context.Context, ns, name string) (promotionStatus, error) {
	obj, err := k.dyn.Resource(promoGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return promotionStatus{}, err
	}
	raw, err := json.Marshal(obj.Object["status"])
	if err != nil {
		return promotionStatus{}, err
	}
	var st promotionStatus
	return st, json.Unmarshal(raw, &st)
}

// awaitPromotion polls the Promotion until it ends, and logs its final
// status (the scenario's report).
func (k *kube) awaitPromotion(t *testing.T, ns, name string) promotionStatus {
	t.Helper()
	var st promotionStatus
	err := poll(promotionWithin, func() error {
		var err error
		if st, err = k.status(context.Background(), ns, name); err != nil {
			return err
		}
		if !st.terminal() {
			return fmt.Errorf("phase %q, step %d: %s", st.Phase, st.CurrentStep, st.Message)
		}
		return nil
	})
	report(t, name, st)
	if err != nil {
		t.Fatalf("Promotion %s/%s did not end within %s: %v", ns, name, promotionWithin, err)
	}
	return st
}

func report(t *testing.T, name string, st promotionStatus) {
	t.Helper()
	state, _ := json.Marshal(st.State)
	t.Logf("Promotion %s: phase=%s currentStep=%d message=%q", name, st.Phase, st.CurrentStep, st.Message)
	t.Logf("  runID=%d conclusion=%v htmlURL=%v", st.runID(), st.output("wait-deployment", "conclusion"), st.output("wait-deployment", "htmlURL"))
	t.Logf("  state=%s", state)
	for i, m := range st.Steps {
		t.Logf("  step %d: status=%v errorCount=%v message=%v", i, m["status"], m["errorCount"], m["message"])
	}
}

// controller is one Kargo controller process (bin/kargo controller).
type controller struct {
	*proc
	log string
}

// startController runs Kargo's controller against the cluster: Argo CD and
// Argo Rollouts integrations off (neither is installed), shard as given,
// and SSL_CERT_FILE holding the simulators' CAs, as an operator trusts a
// GitHub Enterprise Server's private CA.
func (e *env) startController(t *testing.T, name, shard string) *controller {
	t.Helper()
	c := &controller{log: filepath.Join(e.logs, "controller-"+name+".log")}
	env := []string{
		"KUBECONFIG=" + e.cluster.kubeconfig,
		"ARGOCD_INTEGRATION_ENABLED=false",
		"ROLLOUTS_INTEGRATION_ENABLED=false",
		"SHARD_NAME=" + shard,
		"IS_DEFAULT_CONTROLLER=false",
		"KARGO_NAMESPACE=kargo",
		"SHARED_RESOURCES_NAMESPACE=kargo-shared-resources",
		"SSL_CERT_FILE=" + e.caBundle,
		"LOG_LEVEL=debug",
		"METRICS_BIND_ADDRESS=0",
	}
	p, err := startProcess(c.log, env, e.controllerBin, "controller")
	if err != nil {
		t.Fatal(err)
	}
	c.proc = p
	t.Cleanup(c.kill)
	return c
}

// logMentions reports whether the controller's log names s.
func (c *controller) logMentions(s string) bool {
	raw, _ := os.ReadFile(c.log)
	return strings.Contains(string(raw), s)
}
