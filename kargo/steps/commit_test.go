package steps

import (
	"strconv"
	"strings"
	"testing"
	"time"

	kargoapi "github.com/akuity/kargo/api/v1alpha1"
	"github.com/akuity/kargo/pkg/promotion"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
)

var (
	freightCommit = strings.Repeat("9f", 20)
	movedCommit   = strings.Repeat("b4", 20)
)

// commitPromotion is a promotion of Freight from Warehouse my-app that
// carries freightCommit of the workflow's repository, as Kargo hands it to
// commitFrom().
func commitPromotion(f *engineFixture, name string) promotion.Context {
	pc := promoCtx(f, name)
	pc.Freight.UpdateOrPush(kargoapi.FreightReference{
		Name:    "f0e1d2c3b4a5",
		Origin:  kargoapi.FreightOrigin{Kind: kargoapi.FreightOriginKindWarehouse, Name: "my-app"},
		Commits: []kargoapi.GitCommit{{RepoURL: "https://github.com/example/test", ID: freightCommit, Branch: "main"}},
	})
	return pc
}

// Kargo's UI and later steps read links, headSHA and headBranch from the
// Promotion's state: both steps leave them there, the links in the shape
// the UI reads, on github.com; the run builds the Freight's commit, so the
// promotion succeeds. (A host that names the run in its answer: the commit
// is then read once from the run. The listing path, where the commit comes
// with the listing, is covered on a fake clock in pkg/step; here it would
// wait on the wall clock for the listing's settle.)
func TestKargoEngineLeavesLinksAndHeadSHAInTheState(t *testing.T) {
	for _, answer := range []ghsim.DispatchAnswer{ghsim.AnswerRunDetails} {
		f := newEngineFixture(t, ghsim.Options{Answer: answer, QueuedFor: 200 * time.Millisecond, RunFor: 200 * time.Millisecond}, "testdata/stage-commit.yaml", ghsim.Workflow{})
		f.sim.SetRefCommit(f.repo, "main", freightCommit)
		res, _ := f.promote(t, f.controller(), commitPromotion(f, "uat.commit"))
		if res.Status != kargoapi.PromotionPhaseSucceeded {
			t.Fatalf("answer %d: promotion %s: %s %+v", answer, res.Status, res.Message, res.StepExecutionMetadata)
		}
		runs := f.sim.Runs(f.repo)
		if len(runs) != 1 {
			t.Fatalf("%d runs", len(runs))
		}
		state := roundTrip(t, res.State)
		runPage := "https://github.com/example/test/actions/runs/" + jsonNumber(runs[0].ID)
		for _, alias := range []string{"dispatch-deployment", "wait-deployment"} {
			out, _ := state[alias].(map[string]any)
			if out["headSHA"] != freightCommit || out["headBranch"] != "main" {
				t.Fatalf("answer %d: %s output %v: want headSHA %s on main", answer, alias, out, freightCommit)
			}
			links, _ := out["links"].([]any)
			first, _ := links[0].(map[string]any)
			if len(links) == 0 || first["url"] != runPage || first["icon"] != "faGithub" || first["label"] == nil {
				t.Fatalf("answer %d: %s links %v: want the run's page first", answer, alias, out["links"])
			}
			for _, l := range links {
				u, _ := l.(map[string]any)["url"].(string)
				if !strings.HasPrefix(u, "https://github.com/") {
					t.Fatalf("%s: link %v is not an https URL on github.com", alias, l)
				}
			}
		}
		f.checkOneRoundTripPerStep(t)
	}
}

// The branch moved between the Freight and the dispatch: the promotion
// fails, naming the run and both commits, with the run cancelled once and
// nothing dispatched again; a controller restarted on the saved state
// neither dispatches nor cancels again.
func TestKargoEngineFailsWhenTheBranchMoved(t *testing.T) {
	f := newEngineFixture(t, ghsim.Options{QueuedFor: time.Minute, RunFor: time.Hour}, "testdata/stage-commit.yaml", ghsim.Workflow{})
	f.sim.SetRefCommit(f.repo, "main", movedCommit)
	res, _ := f.promote(t, f.controller(), commitPromotion(f, "uat.moved"))
	first := res.StepExecutionMetadata[0]
	if res.Status != kargoapi.PromotionPhaseFailed || first.Status != kargoapi.PromotionStepStatusFailed {
		t.Fatalf("promotion %s, step %s: %s", res.Status, first.Status, first.Message)
	}
	runs := f.sim.Runs(f.repo)
	if len(runs) != 1 {
		t.Fatalf("%d runs", len(runs))
	}
	for _, want := range []string{"run " + jsonNumber(runs[0].ID), "builds commit " + movedCommit + " on main", "not the expected commit " + freightCommit, "GitHub accepted it (202)"} {
		if !strings.Contains(first.Message, want) {
			t.Errorf("step message %q lacks %q", first.Message, want)
		}
	}
	if n := f.sim.Cancels(f.repo, runs[0].ID); n != 1 {
		t.Fatalf("the run was cancelled %d times, want 1", n)
	}
	out, _ := roundTrip(t, res.State)["dispatch-deployment"].(map[string]any)
	if out["headSHA"] != movedCommit || out["links"] == nil || out["runID"] != nil {
		t.Fatalf("dispatch output %v: want the run's commit and links, no runID", out)
	}
	again, _ := f.promote(t, f.controller(), promotion.Context{Project: "kargo-demo", Stage: "uat", Promotion: "uat.moved", Vars: f.vars, Freight: commitPromotion(f, "uat.moved").Freight, State: roundTrip(t, res.State)})
	if again.Status != kargoapi.PromotionPhaseFailed || len(f.sim.Runs(f.repo)) != 1 || f.sim.Stats().ByRoute["cancel"] != 1 {
		t.Fatalf("after a restart: %s %s; %d runs, %d cancels", again.Status, again.Message, len(f.sim.Runs(f.repo)), f.sim.Stats().ByRoute["cancel"])
	}
	f.checkOneRoundTripPerStep(t)
}

func jsonNumber(n int64) string { return strconv.FormatInt(n, 10) }
