package step

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/failure"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/internal/safetext"
)

func outputsArtifact(json string) ghsim.Artifact {
	return ghsim.Artifact{Name: "outputs", Zip: ghsim.ZipFiles(map[string][]byte{"outputs.json": []byte(json)})}
}

// headerLog records the headers each route of the simulator received.
type headerLog struct {
	mu   sync.Mutex
	seen map[string][]string // route -> Authorization values ("" when absent)
}

func (h *headerLog) observe(e ghsim.Exchange) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.seen == nil {
		h.seen = map[string][]string{}
	}
	h.seen[e.Route] = append(h.seen[e.Route], e.Header.Get("Authorization"))
}

func (h *headerLog) auth(route string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.seen[route]...)
}

// A run that uploads outputs: after it succeeds its keys are the step's
// outputs output, typed as Kargo's state keeps them, also after the
// state went through JSON; the blob store that served the archive never
// saw the token, which the API requests all carried.
func TestWaitOutputsFromTheRun(t *testing.T) {
	var headers headerLog
	e := newWaitEnv(t, ghsim.Options{RunFor: time.Minute, Observe: headers.observe}, ghsim.Workflow{
		Artifacts: []ghsim.Artifact{outputsArtifact(`{"imageDigest": "sha256:0f1e", "replicas": 3, "ratio": 0.25, "canary": true}`)},
	})
	cfg := e.run(map[string]any{"outputsArtifact": "outputs", "pollInterval": "30s"})
	res, err := e.promotion(cfg).until()
	if err != nil || res.Status != StatusSucceeded {
		t.Fatalf("%+v, %v", res, err)
	}
	want := map[string]any{"imageDigest": "sha256:0f1e", "replicas": int64(3), "ratio": 0.25, "canary": true}
	if got := res.Output["outputs"]; !reflect.DeepEqual(got, want) {
		t.Fatalf("outputs %#v, want %#v", got, want)
	}
	if _, err := json.Marshal(res.Output); err != nil {
		t.Fatal(err)
	}
	blob := headers.auth("blob")
	if len(blob) != 1 {
		t.Fatalf("the blob store was asked %d times, want once", len(blob))
	}
	for _, a := range blob {
		if a != "" {
			t.Fatalf("the blob store received Authorization %q", a)
		}
	}
	// The outputs cost two counted API requests (the listing, the
	// download's redirect) and one blob download.
	if st := e.sim.Stats(); st.ByRoute["artifacts"] != 1 || st.ByRoute["download-artifact"] != 1 || st.BlobRequests != 1 {
		t.Fatalf("requests for the outputs: %v, %d blob", st.ByRoute, st.BlobRequests)
	}
	for _, route := range []string{"artifacts", "download-artifact"} {
		if a := headers.auth(route); len(a) != 1 || a[0] != "Bearer "+tok {
			t.Fatalf("%s got Authorization %q, want the token once", route, a)
		}
	}
}

// Without outputsArtifact a succeeded run costs what it did: no artifact
// request at all.
func TestWaitWithoutOutputsAsksForNoArtifact(t *testing.T) {
	e := newWaitEnv(t, ghsim.Options{}, ghsim.Workflow{Artifacts: []ghsim.Artifact{outputsArtifact(`{"a":"b"}`)}})
	res, err := e.promotion(e.run(nil)).until()
	if err != nil || res.Status != StatusSucceeded || res.Output["outputs"] != nil {
		t.Fatalf("%+v, %v", res, err)
	}
	if st := e.sim.Stats(); st.ByRoute["artifacts"]+st.ByRoute["download-artifact"]+st.BlobRequests != 0 {
		t.Fatalf("artifact requests without outputsArtifact: %+v", st)
	}
}

// Artifacts that cannot give outputs end the step with a final error that
// says what is wrong with them, and keep the run's conclusion in the
// output.
func TestWaitOutputsArtifactRefused(t *testing.T) {
	big := `{"k": "` + strings.Repeat("a", 60<<10) + `"}`
	noise := make([]byte, 1100<<10) // does not compress: an archive over 1 MiB
	_, _ = rand.NewChaCha8([32]byte{1}).Read(noise)
	tests := []struct {
		name      string
		artifacts []ghsim.Artifact
		advance   time.Duration
		want      string
	}{
		{name: "missing", want: `no artifact named "outputs"`},
		{name: "expired", artifacts: []ghsim.Artifact{{Name: "outputs", Zip: ghsim.ZipFiles(map[string][]byte{"outputs.json": []byte(`{}`)}), Retention: time.Hour}},
			advance: 2 * time.Hour, want: "has expired"},
		{name: "too large", artifacts: []ghsim.Artifact{{Name: "outputs", Zip: ghsim.ZipFiles(map[string][]byte{"outputs.json": []byte(`{}`), "image.tar": noise})}},
			want: "more than 1024 KiB; it should hold only outputs.json"},
		{name: "zip bomb", artifacts: []ghsim.Artifact{outputsArtifact(big)}, want: "a zip bomb"},
		{name: "path traversal", artifacts: []ghsim.Artifact{{Name: "outputs", Zip: ghsim.ZipFiles(map[string][]byte{"outputs.json": []byte(`{}`), "../../etc/cron.d/x": []byte("x")})}},
			want: `unsafe path, "../../etc/cron.d/x"`},
		{name: "not JSON", artifacts: []ghsim.Artifact{outputsArtifact(`imageDigest=sha256:0f1e`)}, want: "not a JSON object"},
		{name: "nested", artifacts: []ghsim.Artifact{outputsArtifact(`{"image": {"digest": "x"}}`)}, want: `key "image" holds an object`},
		{name: "no outputs.json", artifacts: []ghsim.Artifact{{Name: "outputs", Zip: ghsim.ZipFiles(map[string][]byte{"out/outputs.json": []byte(`{}`)})}}, want: "no outputs.json at its top level"},
		{name: "twice", artifacts: []ghsim.Artifact{outputsArtifact(`{}`), outputsArtifact(`{}`)}, want: `2 artifacts named "outputs"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newWaitEnv(t, ghsim.Options{RunFor: time.Minute}, ghsim.Workflow{Artifacts: tt.artifacts})
			cfg := e.run(map[string]any{"outputsArtifact": "outputs"})
			e.clock.Advance(time.Minute + tt.advance)
			res, err := e.promotion(cfg).call(t.Context())
			if res.Status != StatusErrored || !failure.IsFinal(err) || !strings.Contains(res.Message, tt.want) || !strings.Contains(res.Message, `outputsArtifact "outputs"`) {
				t.Fatalf("%s: %v\nwant a final error saying %q", res.Status, res.Message, tt.want)
			}
			t.Log(res.Message)
			if res.Output["conclusion"] != "success" || res.Output["outputs"] != nil {
				t.Fatalf("output %v", res.Output)
			}
		})
	}
}

// The blob store failing is GitHub failing: the step stays Running, backed
// off, and gets the outputs once the store answers again.
func TestWaitOutputsRetriedWhileTheBlobStoreFails(t *testing.T) {
	e := newWaitEnv(t, ghsim.Options{RunFor: time.Minute}, ghsim.Workflow{Artifacts: []ghsim.Artifact{outputsArtifact(`{"a": "b"}`)}})
	cfg := e.run(map[string]any{"outputsArtifact": "outputs"})
	e.clock.Advance(time.Minute)
	e.sim.InjectFault(&ghsim.Fault{Route: "download-artifact", Status: 404, Times: 0})
	p := e.promotion(cfg)
	res, err := p.call(t.Context())
	if res.Status != StatusErrored || !failure.IsFinal(err) {
		t.Fatalf("a 404 for the download: %s %v", res.Status, res.Message)
	}
	e.sim.ClearFaults()
	e.sim.InjectFault(&ghsim.Fault{Route: "download-artifact", Status: 503, Times: 8})
	p = e.promotion(cfg)
	res, err = p.call(t.Context())
	if err != nil || res.Status != StatusRunning || res.RetryAfter == nil || !strings.Contains(res.Message, "reading its outputs failed") {
		t.Fatalf("%s %v: %v", res.Status, res.Message, err)
	}
	res, err = p.until()
	if err != nil || res.Status != StatusSucceeded || res.Output["outputs"] == nil {
		t.Fatalf("%s %v: %v", res.Status, res.Message, err)
	}
}

// A failed run: the message and the failure output carry the failing
// step's last lines, marked as the workflow's, without the steps before
// it, control characters or a secret this process holds; the blob store
// never saw the token.
func TestWaitFailedRunShowsTheFailingStepsLog(t *testing.T) {
	const secret = "hunter2-very-secret-value"
	safetext.Register(secret)
	var headers headerLog
	var log []string
	for i := range 30 {
		log = append(log, "test line "+string(rune('a'+i%26)))
	}
	log = append(log, "\x1b[31mFAIL\x1b[0m TestDeploy: password "+secret+" rejected")
	e := newWaitEnv(t, ghsim.Options{RunFor: 3 * time.Minute, Observe: headers.observe}, ghsim.Workflow{Conclusion: "failure", Jobs: []ghsim.Job{
		{Name: "test", Steps: []string{"Set up job", "Checkout", "Run tests", "Upload"}, FailAt: 3, Log: log},
		{Name: "lint", Steps: []string{"Lint"}},
	}})
	cfg := e.run(map[string]any{"expectedConclusion": "success", "pollInterval": "30s"})
	res, err := e.promotion(cfg).until()
	if res.Status != StatusFailed || !failure.IsFinal(err) {
		t.Fatalf("%+v, %v", res, err)
	}
	for _, want := range []string{`job "test" failed at step 3 "Run tests"`, "the workflow's own output", "FAIL TestDeploy: password [REDACTED] rejected", "Error: Process completed with exit code 1."} {
		if !strings.Contains(res.Message, want) {
			t.Fatalf("message lacks %q: %s", want, res.Message)
		}
	}
	if strings.Contains(res.Message, secret) || strings.Contains(res.Message, "\x1b") || strings.Contains(res.Message, "Run Checkout") {
		t.Fatalf("message has a secret, an escape or an earlier step: %s", res.Message)
	}
	t.Log(res.Message)
	f, _ := res.Output["failure"].(map[string]any)
	lines, _ := f["excerpt"].([]any)
	if f["job"] != "test" || f["step"] != "Run tests" || !strings.Contains(f["url"].(string), "/job/") || len(lines) != 20 {
		t.Fatalf("failure output %#v", f)
	}
	if lines[19] != "Error: Process completed with exit code 1." || lines[18] != "FAIL TestDeploy: password [REDACTED] rejected" {
		t.Fatalf("excerpt ends %q, %q", lines[18], lines[19])
	}
	if b := headers.auth("blob"); len(b) != 1 || b[0] != "" {
		t.Fatalf("blob store Authorization headers %q, want one request without", b)
	}
	if a := headers.auth("job-logs"); len(a) != 1 || a[0] != "Bearer "+tok {
		t.Fatalf("job-logs Authorization %q", a)
	}
}

// A job log that cannot be read only drops the excerpt: the step fails as
// before, naming the job and step.
func TestWaitFailedRunWithoutItsLog(t *testing.T) {
	e := newWaitEnv(t, ghsim.Options{RunFor: time.Minute}, ghsim.Workflow{Conclusion: "failure"})
	e.sim.InjectFault(&ghsim.Fault{Route: "job-logs", Status: 410})
	res, err := e.promotion(e.run(map[string]any{"expectedConclusion": "success"})).until()
	if res.Status != StatusFailed || !failure.IsFinal(err) || !strings.Contains(res.Message, `job "build" failed at step 1 "Run the build"`) || strings.Contains(res.Message, "log lines") {
		t.Fatalf("%+v, %v", res, err)
	}
	if res.Output["failure"] != nil {
		t.Fatalf("failure output %v without a log", res.Output["failure"])
	}
}

// A run that did not succeed has no outputs to read: its conclusion is
// reported as without outputsArtifact, and no artifact is asked for.
func TestWaitOutputsNotReadForARunThatFailed(t *testing.T) {
	e := newWaitEnv(t, ghsim.Options{}, ghsim.Workflow{Conclusion: "failure", Artifacts: []ghsim.Artifact{outputsArtifact(`{"a":"b"}`)}})
	res, err := e.promotion(e.run(map[string]any{"outputsArtifact": "outputs"})).until()
	if err != nil || res.Status != StatusSucceeded || res.Output["conclusion"] != "failure" || res.Output["outputs"] != nil {
		t.Fatalf("%+v, %v", res, err)
	}
	if st := e.sim.Stats(); st.ByRoute["artifacts"] != 0 {
		t.Fatalf("artifacts listed for a failed run: %v", st.ByRoute)
	}
}
