package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/cli"
	"github.com/kargo-gha/kargo-gha/internal/ghclient"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
	"github.com/kargo-gha/kargo-gha/pkg/dispatch"
	"github.com/kargo-gha/kargo-gha/pkg/step"
	"github.com/kargo-gha/kargo-gha/pkg/wait"
)

// budgetResult is scenario 6: counted requests of whole command-line
// invocations, each a fresh process (a fresh Factory: no cache, no host
// knowledge), the way a custom step or a CI job runs them.
type budgetResult struct {
	What        string
	Invocations int
	Counted     int
	PerCall     float64
	Errors      int
}

// runBudgets measures `kargo-gha dispatch` in run-details mode, and
// `kargo-gha wait` on a run that succeeded and on one that failed (whose
// diagnosis lists its jobs).
func runBudgets(s settings) ([]budgetResult, error) {
	var out []budgetResult
	for _, tc := range []struct {
		what       string
		conclusion string
		waitOnly   bool
	}{
		{what: "kargo-gha dispatch, run-details answer"},
		{what: "kargo-gha wait --expected-conclusion success, run succeeded", conclusion: "success", waitOnly: true},
		{what: "kargo-gha wait --expected-conclusion success, run failed (diagnosis: failed job and step, its log excerpt)", conclusion: "failure", waitOnly: true},
	} {
		r, err := runBudget(s, tc.what, tc.conclusion, tc.waitOnly)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func runBudget(s settings, what, conclusion string, waitOnly bool) (budgetResult, error) {
	sim, err := ghsim.New(ghsim.Options{RunDelay: 20 * time.Millisecond})
	if err != nil {
		return budgetResult{}, err
	}
	defer sim.Close()
	repo := sim.AddRepo("bench", "app")
	sim.AddWorkflow(repo, ghsim.Workflow{File: "deploy.yml", Inputs: []string{"nonce"}, Conclusion: conclusion,
		Jobs: []ghsim.Job{{Name: "build", Steps: []string{"Build"}}, {Name: "deploy", Steps: []string{"Checkout", "Apply"}, FailAt: 2}}})
	sim.AddToken(token, "bench", false)
	pool := &ghclient.Pool{RootCAs: sim.RootCAs(), DialContext: sim.DialContext}
	defer pool.CloseIdleConnections()
	res := budgetResult{What: what, Invocations: s.budgetN}
	invoke := func(args ...string) (string, string, int) {
		var stdout, stderr bytes.Buffer
		f := &cli.Factory{
			IO:     cli.IOStreams{In: strings.NewReader(""), Out: &stdout, ErrOut: &stderr},
			Getenv: func(k string) string { return map[string]string{"GH_TOKEN": token}[k] },
			Runner: &step.Runner{Clients: pool, Dispatcher: &dispatch.Dispatcher{}, Checker: &wait.Checker{}, CallTimeout: 30 * time.Second},
		}
		code := cli.Run(context.Background(), f, args)
		return stdout.String(), stderr.String(), code
	}
	repoURL := "https://github.com/bench/app"
	for i := 0; i < s.budgetN; i++ {
		var id int64
		if waitOnly {
			// The run to wait for, made outside the count.
			out, errOut, code := invoke("dispatch", "--repo-url", repoURL, "--workflow-file", "deploy.yml", "--ref", "main", "--input", fmt.Sprint("nonce=", i))
			var o struct{ RunID int64 }
			if code != 0 || json.Unmarshal([]byte(out), &o) != nil {
				return res, fmt.Errorf("%s: setting up the run failed (exit %d): %s", what, code, errOut)
			}
			id = o.RunID
			time.Sleep(50 * time.Millisecond) // completed: queued and running take no time here
		}
		before := sim.Stats().Counted
		var code int
		if waitOnly {
			_, _, code = invoke("wait", "--repo-url", repoURL, "--run-id", fmt.Sprint(id), "--expected-conclusion", "success", "--poll-interval", "1s")
		} else {
			_, _, code = invoke("dispatch", "--repo-url", repoURL, "--workflow-file", "deploy.yml", "--ref", "main", "--input", fmt.Sprint("nonce=", i))
		}
		if (conclusion == "failure") != (code != 0) {
			res.Errors++
		}
		res.Counted += sim.Stats().Counted - before
	}
	res.PerCall = float64(res.Counted) / float64(res.Invocations)
	return res, nil
}
