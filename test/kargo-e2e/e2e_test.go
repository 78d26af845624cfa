// Package e2e runs Kargo's real controller (bin/kargo, built by make
// kargo-controller with the gha-* steps compiled in) against a real
// kube-apiserver and etcd, promoting Stages whose steps dispatch a workflow
// on the GitHub simulator and wait for its run. scripts/kargo-e2e.sh builds
// what it needs and runs it.
package e2e

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
)

const (
	project = "kargo-demo"
	// patToken is the personal access token the PAT Secret holds.
	patToken = "ghp_kargo_e2e_personal_token"
	patLogin = "kargo-e2e-user"
	// The simulated GitHub App and its one installation.
	appID, appClientID, installationID = 4242, "Iv23liKargoE2E", 77
	// appLogin is who the simulator says an installation token acts as.
	appLogin = "sim-app[bot]"
)

// env is what TestMain sets up once: the cluster with Kargo's CRDs, and
// two GitHub simulators the controllers reach over HTTPS.
type env struct {
	cluster       *cluster
	kube          *kube
	controllerBin string
	logs          string
	caBundle      string // both simulators' CAs, the controllers' SSL_CERT_FILE
	// current answers dispatches as GitHub.com does (run details);
	// ghes320 as GitHub Enterprise Server 3.20 does (204, no run ID).
	current, ghes320 *ghsim.Server
	freight          string

	mu sync.Mutex
	// onDispatch, when set, sees each dispatch a simulator has acted on,
	// before its answer leaves (the answer is held until it returns).
	onDispatch func(*ghsim.Server, ghsim.Exchange)
}

var e *env

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kargo-e2e:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	need := map[string]string{}
	for _, v := range []string{"KARGO_E2E_ETCD", "KARGO_E2E_KUBE_APISERVER", "KARGO_E2E_CONTROLLER", "KARGO_E2E_CRDS", "KARGO_E2E_LOGS"} {
		if need[v] = os.Getenv(v); need[v] == "" {
			return 0, fmt.Errorf("%s is unset: run scripts/kargo-e2e.sh (make kargo-e2e), which builds and names etcd, kube-apiserver, the controller and Kargo's CRDs", v)
		}
	}
	dir, err := os.MkdirTemp("", "kargo-e2e-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	e = &env{controllerBin: need["KARGO_E2E_CONTROLLER"], logs: need["KARGO_E2E_LOGS"]}
	if err := os.MkdirAll(e.logs, 0o755); err != nil {
		return 0, err
	}
	start := time.Now()
	c, stop, err := startCluster(need["KARGO_E2E_ETCD"], need["KARGO_E2E_KUBE_APISERVER"], dir, e.logs)
	if err != nil {
		return 0, err
	}
	defer stop()
	e.cluster = c
	fmt.Printf("kargo-e2e: etcd and kube-apiserver at %s ready in %s\n", c.url, time.Since(start).Round(time.Millisecond))
	if e.kube, err = newKube(c.kubeconfig); err != nil {
		return 0, err
	}
	ctx := context.Background()
	crds, err := e.kube.installCRDs(ctx, need["KARGO_E2E_CRDS"])
	if err != nil {
		return 0, err
	}
	fmt.Printf("kargo-e2e: Kargo's CRDs established: %s\n", strings.Join(crds, ", "))
	if err := e.setUpGitHub(dir); err != nil {
		return 0, err
	}
	defer e.current.Close()
	defer e.ghes320.Close()
	if err := e.setUpProject(ctx); err != nil {
		return 0, err
	}
	return m.Run(), nil
}

// setUpGitHub starts the simulators. Every repository has the workflow
// deploy.yml, whose run-name names the dispatch key (for correlationInput).
func (e *env) setUpGitHub(dir string) error {
	timing := ghsim.Options{RunDelay: time.Second, QueuedFor: 2 * time.Second, RunFor: 3 * time.Second}
	current, err := ghsim.New(e.observed(timing, &e.current))
	if err != nil {
		return err
	}
	timing.Answer = ghsim.AnswerGHES320
	ghes320, err := ghsim.New(e.observed(timing, &e.ghes320))
	if err != nil {
		current.Close()
		return err
	}
	e.mu.Lock() // Observe reads them from the simulators' goroutines
	e.current, e.ghes320 = current, ghes320
	e.mu.Unlock()
	wf := ghsim.Workflow{File: "deploy.yml", Inputs: []string{"environment", "promotion_id", "deploy_version", "dispatch_key"},
		RunName: "Deploy ${{ inputs.environment }} ${{ inputs.dispatch_key }}"}
	for _, r := range []struct {
		sim  *ghsim.Server
		name string
	}{{e.current, "pat"}, {e.current, "app"}, {e.current, "killed-nokey"}, {e.ghes320, "killed"}, {e.ghes320, "shared"}} {
		r.sim.AddWorkflow(r.sim.AddRepo("example", r.name), wf)
	}
	e.current.AddToken(patToken, patLogin, false)
	e.ghes320.AddToken(patToken, patLogin, false)
	e.caBundle = filepath.Join(dir, "github-ca.pem")
	return os.WriteFile(e.caBundle, append(append([]byte{}, e.current.CACertPEM...), e.ghes320.CACertPEM...), 0o644)
}

// observed adds to opts an Observe that hands accepted dispatches to
// onDispatch, with the simulator *sim (set once New returns).
func (e *env) observed(opts ghsim.Options, sim **ghsim.Server) ghsim.Options {
	opts.Observe = func(x ghsim.Exchange) {
		e.mu.Lock()
		f, s := e.onDispatch, *sim
		e.mu.Unlock()
		if f != nil && x.Route == "dispatch" && (x.Status == 200 || x.Status == 204) {
			f(s, x)
		}
	}
	return opts
}

// setUpProject creates the project namespace with one Secret per
// repository for Kargo's credentials database (a PAT for all but
// example/app, a GitHub App for example/app), the namespaces the
// controller writes to, and the Freight every Stage promotes.
func (e *env) setUpProject(ctx context.Context) error {
	for _, ns := range []string{"kargo", "kargo-shared-resources"} {
		if err := e.kube.namespace(ctx, ns, false); err != nil {
			return err
		}
	}
	if err := e.kube.namespace(ctx, project, true); err != nil {
		return err
	}
	pat := map[string]string{"username": patLogin, "password": patToken}
	for name, url := range map[string]string{
		"github-pat":   e.current.RepoURL("example", "pat"),
		"github-nokey": e.current.RepoURL("example", "killed-nokey"),
		"ghes-killed":  e.ghes320.RepoURL("example", "killed"),
		"ghes-shared":  e.ghes320.RepoURL("example", "shared"),
	} {
		if err := e.kube.gitSecret(ctx, project, name, url, pat); err != nil {
			return err
		}
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	e.current.AddApp(&ghsim.App{ID: appID, ClientID: appClientID, PublicKey: &key.PublicKey, Installations: map[int64][]string{installationID: {"example/app"}}})
	if err := e.kube.gitSecret(ctx, project, "github-app", e.current.RepoURL("example", "app"), map[string]string{
		"githubAppClientID":       appClientID,
		"githubAppInstallationID": fmt.Sprint(installationID),
		"githubAppPrivateKey":     string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})),
	}); err != nil {
		return err
	}
	e.freight, err = e.kube.freight(ctx, project, "e2e-freight")
	return err
}

// runs is every run the simulator created in repository example/name.
func runs(sim *ghsim.Server, name string) []ghsim.RunInfo {
	return sim.Runs(sim.Repo("example", name))
}

// checkOneRun checks the promotion succeeded and reported the one run in
// the repository, with the conclusion, dispatched for this promotion by
// actor.
func checkOneRun(t *testing.T, st promotionStatus, promo string, all []ghsim.RunInfo, actor string) {
	t.Helper()
	if len(all) != 1 {
		t.Fatalf("%d runs in the simulator, want exactly 1: %+v", len(all), all)
	}
	run := all[0]
	if st.Phase != "Succeeded" {
		t.Fatalf("Promotion %s ended %s: %s", promo, st.Phase, st.Message)
	}
	if st.runID() != run.ID {
		t.Fatalf("Promotion %s reports runID %v, the simulator's run is %d", promo, st.output("dispatch-deployment", "runID"), run.ID)
	}
	if c := st.output("wait-deployment", "conclusion"); c != "success" {
		t.Fatalf("Promotion %s reports conclusion %v, want success", promo, c)
	}
	if run.Actor != actor || run.Inputs["promotion_id"] != promo || run.Inputs["deploy_version"] != "1.10" {
		t.Fatalf("run %d: actor %q inputs %v; want actor %q, promotion_id %s, deploy_version 1.10", run.ID, run.Actor, run.Inputs, actor, promo)
	}
}

// (1) A personal access token in a Git credentials Secret.
func TestPromotionWithPersonalAccessTokenSecret(t *testing.T) {
	e.startController(t, "pat", "")
	s := stageSpec{Namespace: project, Name: "uat-pat", RepoURL: e.current.RepoURL("example", "pat")}
	promo, err := e.kube.promote(context.Background(), s, e.freight)
	if err != nil {
		t.Fatal(err)
	}
	st := e.kube.awaitPromotion(t, project, promo)
	checkOneRun(t, st, promo, runs(e.current, "pat"), patLogin)
}

// (2) A GitHub App in a Git credentials Secret: Kargo's credentials
// database mints the installation token, the step uses it.
func TestPromotionWithGitHubAppSecret(t *testing.T) {
	e.startController(t, "app", "")
	s := stageSpec{Namespace: project, Name: "uat-app", RepoURL: e.current.RepoURL("example", "app")}
	before := e.current.Stats().TokenExchanges
	promo, err := e.kube.promote(context.Background(), s, e.freight)
	if err != nil {
		t.Fatal(err)
	}
	st := e.kube.awaitPromotion(t, project, promo)
	checkOneRun(t, st, promo, runs(e.current, "app"), appLogin)
	if n := e.current.Stats().TokenExchanges - before; n < 1 {
		t.Fatalf("%d installation tokens minted, want at least 1", n)
	}
	t.Logf("installation tokens minted by Kargo's credentials database: %d", e.current.Stats().TokenExchanges-before)
}

// (3) The controller is killed (SIGKILL) after GitHub accepted the
// dispatch and before its answer reached the controller, so the step's
// result is never saved. A new controller finishes the promotion: one run,
// found again through correlationInput and reported.
func TestControllerKilledBetweenDispatchAndSave(t *testing.T) {
	promo, runID := e.killDuringDispatch(t, stageSpec{Namespace: project, Name: "uat-killed", RepoURL: e.ghes320.RepoURL("example", "killed"), Correlated: true})
	st := e.kube.awaitPromotion(t, project, promo)
	checkOneRun(t, st, promo, runs(e.ghes320, "killed"), patLogin)
	if st.runID() != runID {
		t.Fatalf("the restarted controller reported run %d; the dead one created %d", st.runID(), runID)
	}
}

// (3b) The same without correlationInput, on a host that names the run in
// its answer (the answer the dead controller never read): the restarted
// controller cannot tell the run from another dispatcher's, so it neither
// dispatches again nor guesses; the promotion fails naming the run.
func TestControllerKilledBetweenDispatchAndSaveWithoutKey(t *testing.T) {
	promo, runID := e.killDuringDispatch(t, stageSpec{Namespace: project, Name: "uat-killed-nokey", RepoURL: e.current.RepoURL("example", "killed-nokey")})
	st := e.kube.awaitPromotion(t, project, promo)
	if all := runs(e.current, "killed-nokey"); len(all) != 1 {
		t.Fatalf("%d runs after the restart, want exactly 1: %+v", len(all), all)
	}
	msg := st.Message
	for _, m := range st.Steps {
		msg += fmt.Sprint(" ", m["message"])
	}
	if st.Phase != "Failed" || !strings.Contains(msg, fmt.Sprint(runID)) {
		t.Fatalf("Promotion %s ended %s (%s); want Failed, naming run %d", promo, st.Phase, msg, runID)
	}
}

// killDuringDispatch promotes s with a controller that is killed (SIGKILL)
// while GitHub's answer to its dispatch is held, checks nothing of the
// dispatch was saved, and starts another controller. It returns the
// Promotion and the run the dispatch created.
func (e *env) killDuringDispatch(t *testing.T, s stageSpec) (string, int64) {
	t.Helper()
	dead := e.startController(t, s.Name+"-before-kill", "")
	killed := make(chan int64, 1)
	var fired atomic.Bool
	repoPath := strings.TrimPrefix(s.RepoURL, "https://")
	_, repoPath, _ = strings.Cut(repoPath, "/")
	e.mu.Lock()
	e.onDispatch = func(sim *ghsim.Server, x ghsim.Exchange) {
		if !strings.HasPrefix(x.Path, "/repos/"+repoPath+"/") {
			return
		}
		if !fired.CompareAndSwap(false, true) {
			return // only the first dispatch: a second is the bug the test looks for
		}
		dead.kill() // the answer is still held: the controller never reads it
		all := sim.Runs(sim.Repo("example", strings.TrimPrefix(repoPath, "example/")))
		killed <- all[len(all)-1].ID
	}
	e.mu.Unlock()
	defer func() { e.mu.Lock(); e.onDispatch = nil; e.mu.Unlock() }()
	promo, err := e.kube.promote(context.Background(), s, e.freight)
	if err != nil {
		t.Fatal(err)
	}
	var runID int64
	var st promotionStatus
	err = poll(promotionWithin, func() error {
		select {
		case runID = <-killed:
			return nil
		default:
		}
		if st, err = e.kube.status(context.Background(), project, promo); err == nil && st.terminal() {
			return nil
		}
		return fmt.Errorf("no dispatch yet (phase %q: %s)", st.Phase, st.Message)
	})
	if err != nil || runID == 0 {
		report(t, promo, st)
		t.Logf("Git credentials Secrets in %s: %s", project, e.kube.gitSecrets(context.Background(), project))
		t.Fatalf("the controller never dispatched (%v); its log ends:\n%s", err, tail(dead.log, 20))
	}
	if st, err = e.kube.status(context.Background(), project, promo); err != nil {
		t.Fatal(err)
	}
	report(t, promo+" (when the controller was killed)", st)
	if got := st.output("dispatch-deployment", "runID"); got != nil {
		t.Fatalf("the state saved before the kill already holds runID %v: the kill came too late to test anything", got)
	}
	t.Logf("controller killed with SIGKILL after GitHub created run %d, before its answer arrived; starting another", runID)
	e.startController(t, s.Name+"-after-kill", "")
	return promo, runID
}

// (4) Two controller shards, each promoting its own Stage, dispatch the
// same workflow at the same ref at once on a host that does not name runs:
// with correlationInput each promotion gets its own run, and each shard
// only touches its own Stage's Promotion.
func TestTwoShardsWithCorrelationInput(t *testing.T) {
	shards := []string{"shard-a", "shard-b"}
	ctls := map[string]*controller{}
	for _, sh := range shards {
		ctls[sh] = e.startController(t, sh, sh)
	}
	promos := map[string]string{}
	for _, sh := range shards {
		s := stageSpec{Namespace: project, Name: "uat-" + sh, Shard: sh, RepoURL: e.ghes320.RepoURL("example", "shared"), Correlated: true}
		promo, err := e.kube.promote(context.Background(), s, e.freight)
		if err != nil {
			t.Fatal(err)
		}
		promos[sh] = promo
	}
	statuses := map[string]promotionStatus{}
	for _, sh := range shards {
		statuses[sh] = e.kube.awaitPromotion(t, project, promos[sh])
	}
	all := runs(e.ghes320, "shared")
	if len(all) != len(shards) {
		t.Fatalf("%d runs for %d promotions: %+v", len(all), len(shards), all)
	}
	byID := map[int64]ghsim.RunInfo{}
	for _, r := range all {
		byID[r.ID] = r
	}
	for _, sh := range shards {
		st, promo := statuses[sh], promos[sh]
		run, ok := byID[st.runID()]
		if st.Phase != "Succeeded" || !ok || run.Inputs["promotion_id"] != promo {
			t.Fatalf("%s: Promotion %s ended %s (%s), runID %d is run %+v", sh, promo, st.Phase, st.Message, st.runID(), run)
		}
		delete(byID, run.ID) // one run per promotion
		for other, otherPromo := range promos {
			if other != sh && ctls[sh].logMentions(otherPromo) {
				t.Fatalf("controller %s logged Promotion %s, which belongs to %s", sh, otherPromo, other)
			}
		}
		if !ctls[sh].logMentions(promo) {
			t.Fatalf("controller %s never logged its own Promotion %s", sh, promo)
		}
		t.Logf("%s promoted %s: run %d (dispatch key %v)", sh, promo, run.ID, run.Inputs["dispatch_key"])
	}
}
