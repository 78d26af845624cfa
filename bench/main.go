// Command bench measures kargo-gha against the approaches people use today:
// time to run ID, rate-limit cost, correctness under concurrency, token
// exchanges and the cost of waiting, all against the GitHub simulator. It
// writes docs/performance.md and its chart.
//
//	cd bench && go run . -out ../docs/performance.md -chart ../docs/performance-overhead.png
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
)

func main() {
	out := flag.String("out", "../docs/performance.md", "report to write")
	chart := flag.String("chart", "../docs/performance-overhead.png", "chart to write")
	isShort := flag.Bool("short", false, "a quick run with scaled-down delays and counts (CI)")
	render := flag.String("render", "", "redraw the report and chart from a results JSON file instead of measuring")
	scaleOnly := flag.Bool("scale", false, "measure scenario 7 only, into the results JSON beside -out (the other scenarios' numbers kept)")
	flag.Parse()
	if *scaleOnly {
		if err := measureScaleInto(*out, *chart, *isShort); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if *render != "" {
		r, err := load(*render)
		if err == nil {
			err = write(r, *out, *chart)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	s := full
	if *isShort {
		s = short
	}
	cmd := "cd bench && go run . " + strings.Join(os.Args[1:], " ")
	r, err := run(s, func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) })
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	r.Command = strings.TrimSpace(cmd)
	if err := write(r, *out, *chart); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "wrote %s and %s\n", *out, *chart)
}

// run measures every scenario with every approach.
func run(s settings, logf func(string, ...any)) (*results, error) {
	r := &results{Started: time.Now(), Machine: machine(), Speed: s.speed}
	s.clk = newClock(s.speed)
	approaches := func() []approach {
		return []approach{s.ours(""), s.fixedPoll(), detailsOnly{}}
	}
	for _, answer := range []ghsim.DispatchAnswer{ghsim.AnswerRunDetails, ghsim.AnswerNoContent} {
		for _, l := range s.delays {
			for _, a := range approaches() {
				logf("overhead: %s, L=%s, %s", modeName(answer), l, a.name())
				c, err := runOverhead(s, a, answer, l)
				if err != nil {
					return nil, err
				}
				r.Overhead = append(r.Overhead, c)
			}
		}
	}
	// Scenario 3: this project with a correlation key, which is what the
	// README tells users to set for concurrent dispatches without run
	// details; the baselines as they are. Without a key, dispatches of one
	// workflow and ref are sent one at a time, each deciding its run
	// first: a few show what that costs.
	type concurrent struct {
		a approach
		n int
	}
	for _, c := range []concurrent{
		{s.ours(correlationInput), s.concurrencyN}, {s.fixedPoll(), s.concurrencyN}, {detailsOnly{}, s.concurrencyN},
		{unkeyed{s.ours("")}, s.unkeyedN},
	} {
		logf("concurrency: %d dispatches, %s", c.n, c.a.name())
		res, err := runConcurrency(s, c.a, c.n)
		if err != nil {
			return nil, err
		}
		r.Concurrency = append(r.Concurrency, res)
	}
	for _, perDispatch := range []bool{false, true} {
		logf("tokens: %d dispatches, a token per dispatch: %t", s.appN, perDispatch)
		t, err := runTokens(s, perDispatch)
		if err != nil {
			return nil, err
		}
		r.Tokens = append(r.Tokens, t)
	}
	for _, conditional := range []bool{true, false} {
		w, err := runWait(s, conditional)
		if err != nil {
			return nil, err
		}
		r.Wait = append(r.Wait, w)
	}
	logf("request budgets of command-line invocations")
	b, err := runBudgets(s)
	if err != nil {
		return nil, err
	}
	r.Budgets = b
	if r.Scale, err = runScales(s.scale, logf); err != nil {
		return nil, err
	}
	if r.ScaleMixed, err = runMixedScales(s.scale, logf); err != nil {
		return nil, err
	}
	r.Duration = time.Since(r.Started)
	return r, nil
}

// write saves the report, its chart and the raw results (as JSON, beside
// the report, so the report can be redrawn without measuring again).
func write(r *results, out, chart string) error {
	if err := r.chart(chart); err != nil {
		return err
	}
	if err := r.scaleChart(scaleChartPath(chart)); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(strings.TrimSuffix(out, filepath.Ext(out))+".json", raw, 0o644); err != nil {
		return err
	}
	rel, err := filepath.Rel(filepath.Dir(out), chart)
	if err != nil {
		rel = chart
	}
	return os.WriteFile(out, []byte(r.markdown(rel)), 0o644)
}

func load(path string) (*results, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r results
	return &r, json.Unmarshal(raw, &r)
}
