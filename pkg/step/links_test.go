package step

import (
	"context"
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/credentials"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/internal/repourl"
)

// kargoUIIcons are the icon names Kargo v1.11.2's UI draws
// (ui/src/plugins/output-links-plugin/resolve-icon.ts); any other name is
// drawn as a generic external link with the label beside it.
var kargoUIIcons = map[string]bool{
	"faBitbucket": true, "faDocker": true, "faGitAlt": true, "faGithub": true, "faGitlab": true, "faJira": true,
	"faSlack": true, "faAtlassian": true, "faRedhat": true, "faGit": true, "faJenkins": true, "faDigitalOcean": true,
	"faGithubAlt": true, "faArrowUpRightFromSquare": true, "faBox": true, "faChartLine": true, "faCheckCircle": true,
	"faCircleNodes": true, "faCode": true, "faDatabase": true, "faFileCode": true, "faGlobe": true, "faLink": true,
	"faServer": true, "faTag": true,
}

// kargoUIURL is the UI's refinement of a link's url (output-links.ts):
// only http and https.
var kargoUIURL = regexp.MustCompile(`(?i)^https?://`)

// checkLinks holds a step output's links to the rules of Kargo's UI (an
// entry that breaks them is dropped there, silently) and to this project's:
// on origin only, icons from the UI's table, a label on each. It returns
// the links.
func checkLinks(t *testing.T, out map[string]any, origin string) []map[string]any {
	t.Helper()
	// Through JSON, as the UI reads it from the Promotion's status.
	b, err := json.Marshal(out["links"])
	if err != nil {
		t.Fatal(err)
	}
	var links []map[string]any
	if err := json.Unmarshal(b, &links); err != nil {
		t.Fatalf("links is not a list of objects: %s", b)
	}
	for _, l := range links {
		for k, v := range l {
			if k != "url" && k != "icon" && k != "tooltip" && k != "label" {
				t.Errorf("link %v has field %q, which the UI does not read", l, k)
			}
			if _, ok := v.(string); !ok {
				t.Errorf("link %v: %s is a %T, not a string", l, k, v)
			}
		}
		raw, _ := l["url"].(string)
		u, err := url.Parse(raw)
		if err != nil || !kargoUIURL.MatchString(raw) || u.Host == "" {
			t.Errorf("link %v: url is not an absolute http(s) URL", l)
			continue
		}
		if u.Scheme+"://"+u.Host != origin || u.User != nil {
			t.Errorf("link %v: url is not on %s", l, origin)
		}
		if icon, _ := l["icon"].(string); !kargoUIIcons[icon] {
			t.Errorf("link %v: icon %q is not in the UI's table", l, icon)
		}
		if l["label"] == nil || l["tooltip"] == nil {
			t.Errorf("link %v: no label or tooltip", l)
		}
	}
	return links
}

// A run that waits for an approval, then fails: every output of the wait
// step holds links by the UI's rules; while the run waits, one is its
// approval; once it failed, one per failed job named; headSHA and
// headBranch from the first read on.
func TestWaitStepLinksFollowKargosUI(t *testing.T) {
	e := newWaitEnv(t, ghsim.Options{QueuedFor: 30 * time.Second, RunFor: time.Minute}, ghsim.Workflow{Conclusion: "failure",
		Jobs: []ghsim.Job{
			{Name: "build", Steps: []string{"Checkout", "Build"}},
			{Name: "deploy (prod)", Steps: []string{"Set up job", "kubectl apply"}, FailAt: 2},
			{Name: "notify", Steps: []string{"Send"}, Cancelled: true},
		},
		Environment: &ghsim.Environment{Name: "prod", Reviewers: []string{"alice"}, ApprovalFor: 2 * time.Minute}})
	cfg := e.run(map[string]any{"expectedConclusion": "success", "pollInterval": "20s"})
	sha := e.sim.RefCommit(e.repo, "main")
	p := e.promotion(cfg)
	approvals := 0
	var res Result
	var err error
	for range 100 {
		res, err = p.call(context.Background())
		links := checkLinks(t, res.Output, "https://github.com")
		if res.Output["headSHA"] != sha || res.Output["headBranch"] != "main" {
			t.Fatalf("output %v: want headSHA %s, headBranch main", res.Output, sha)
		}
		if len(links) == 0 || links[0]["icon"] != "faGithub" || !strings.HasSuffix(links[0]["url"].(string), "/actions/runs/"+jsonNumber(cfg["runID"])) {
			t.Fatalf("the first link is not the run: %v", links)
		}
		for _, l := range links {
			if l["icon"] == "faCheckCircle" {
				approvals++
				if !strings.Contains(l["tooltip"].(string), "approval of environment prod") {
					t.Errorf("approval link %v does not say what it waits for", l)
				}
			}
		}
		if res.Status != StatusRunning {
			break
		}
		e.clock.Advance(*res.RetryAfter)
	}
	if res.Status != StatusFailed || err == nil || approvals == 0 {
		t.Fatalf("%+v, %v; %d outputs had an approval link", res, err, approvals)
	}
	var jobs []string
	for _, l := range checkLinks(t, res.Output, "https://github.com") {
		if l["icon"] == "faFileCode" {
			jobs = append(jobs, l["label"].(string))
		}
	}
	if strings.Join(jobs, ",") != "Job deploy (prod),Job notify" {
		t.Fatalf("failed-job links %q, want deploy (prod) then notify", jobs)
	}
}

func jsonNumber(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// On an Enterprise Server the links go to its web origin (the API's host,
// without /api/v3).
func TestDispatchStepLinksOnEnterpriseServer(t *testing.T) {
	r, sim := newRunner(t, ghsim.Options{})
	anyRepo := func(context.Context, string) (*credentials.Credentials, error) {
		return &credentials.Credentials{Token: tok}, nil
	}
	cfg := map[string]any{"repoURL": sim.RepoURL("example", "test"), "workflowFile": "test.yaml", "ref": "main"}
	res, err := r.Dispatch(context.Background(), &Context{Project: "kargo-demo", Alias: "d", Config: cfg, Credentials: anyRepo})
	if err != nil || res.Status != StatusSucceeded {
		t.Fatalf("%+v, %v", res, err)
	}
	links := checkLinks(t, res.Output, sim.URL)
	if len(links) != 1 || !strings.HasPrefix(links[0]["url"].(string), sim.URL+"/example/test/actions/runs/") {
		t.Fatalf("links %v", links)
	}
}

// A server's URL is not trusted to say where people go: only http(s) on the
// repository's web origin is kept.
func TestLinksKeepToTheWebOrigin(t *testing.T) {
	dotcom, _ := repourl.Parse("https://github.com/example/test", repourl.Options{})
	ghes, _ := repourl.Parse("https://ghe.example.com/example/test", repourl.Options{})
	tests := []struct {
		repo repourl.Repository
		url  string
		kept bool
	}{
		{dotcom, "https://github.com/example/test/actions/runs/1", true},
		{dotcom, "https://api.github.com/repos/example/test/actions/runs/1", false},
		{dotcom, "https://github.com.evil.example/x", false},
		{dotcom, "https://user@github.com/x", false},
		{dotcom, "javascript:alert(1)", false},
		{dotcom, "//github.com/x", false},
		{dotcom, "https://github.com/x y", false},
		{dotcom, "http://github.com/x", false},
		{dotcom, "https://github.com/x?t=ghp_" + strings.Repeat("a", 36), false},
		{ghes, "https://ghe.example.com/example/test/actions/runs/1", true},
		{ghes, "https://ghe.example.com:8443/example/test", false},
		{ghes, "https://github.com/example/test", false},
	}
	for _, tt := range tests {
		got := linksValue(webOrigin(tt.repo), link{url: tt.url, icon: iconRun, label: "Run"})
		if (len(got) == 1) != tt.kept {
			t.Errorf("%s for %s: kept %v, want %v", tt.url, tt.repo.WebURL(), len(got) == 1, tt.kept)
		}
	}
	many := make([]link, 20)
	for i := range many {
		many[i] = link{url: "https://github.com/example/test/actions/runs/1", label: strings.Repeat("x", 1000)}
	}
	got := linksValue("https://github.com", many...)
	if len(got) != maxLinks || len(got[0].(map[string]any)["label"].(string)) > maxLinkText+len("…") {
		t.Fatalf("links not bounded: %d, label %d bytes", len(got), len(got[0].(map[string]any)["label"].(string)))
	}
}
