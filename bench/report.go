package main

import (
	"github.com/kargo-gha/kargo-gha/pkg/dispatch"

	"fmt"
	"image/color"
	"os"
	"runtime"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// results is everything one run measured.
type results struct {
	Command  string
	Started  time.Time
	Duration time.Duration
	Machine  string
	// Speed is how fast the clock of the measurements ran: 1 (or 0, in
	// results saved before it was recorded) is real time.
	Speed       float64
	Overhead    []overheadCell
	Concurrency []concurrencyResult
	Tokens      []tokenResult
	Wait        []waitResult
	Budgets     []budgetResult
	Scale       []scaleResult
	// ScaleMixed is scenario 7's mixed case (runMixedScales).
	ScaleMixed []scaleResult `json:",omitempty"`
	// ScaleCommand, ScaleMachine and ScaleDate say where scenario 7 was
	// measured when it was measured apart (go run . -scale).
	ScaleCommand, ScaleMachine, ScaleDate string `json:",omitempty"`
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

// settleMargin is what a dispatch without a key waits beyond the settle
// before it takes the one new run (pkg/dispatch: created_at's whole second
// and the 2 s GitHub's listings may lag behind a run's creation).
const settleMargin = 3 * time.Second

// runIDTarget is the 204-mode target for the p50 time to the run ID
// beyond L: the settle and its margin, plus 1.5 s for the Date's and
// created_at's whole seconds and the listing interval.
const runIDTarget = dispatch.DefaultSettle + settleMargin + 1500*time.Millisecond

// realTime reports whether the timings are real (not the short setting's
// fast clock).
func (r *results) realTime() bool { return r.Speed <= 1 }

func secs(d time.Duration) string {
	return strings.TrimSuffix(fmt.Sprintf("%.1f", d.Seconds()), ".0") + " s"
}

// markdown renders the report, with the targets of issue 6 checked.
func (r *results) markdown(chart string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Performance\n\nMeasured by `%s` on %s (%s), taking %s. ", r.Command, r.Started.UTC().Format("2006-01-02"), r.Machine, r.Duration.Round(time.Second))
	b.WriteString("Every number comes from the real client code (`pkg/dispatch`, `pkg/wait`) and two baselines written in the benchmark, ")
	b.WriteString("all against the project's GitHub simulator over HTTPS on loopback, in the same run. ")
	b.WriteString("**L** is how long GitHub takes to create a run after accepting a dispatch; **overhead** is the time to the run ID beyond L.\n\n")
	if !r.realTime() {
		fmt.Fprintf(&b, "**This run's clock ran %g× faster than real time** (the short setting): its timings are not real and no timing target is judged; the counts hold.\n\n", r.Speed)
	}
	b.WriteString("Baselines: **(a)** a fixed 5-second poll that takes the newest `workflow_dispatch` run created after the local dispatch time ")
	b.WriteString("(the approach of the popular dispatch actions before run details existed); **(b)** dispatch with run details only, no fallback.\n\n")
	fmt.Fprintf(&b, "![Overhead against L](%s)\n\n", chart)

	b.WriteString("## 1–2. Time to run ID and rate-limit cost per dispatch\n\n")
	b.WriteString("Counted: requests that count against the primary rate limit (304 answers count zero). Points: GitHub's secondary-limit cost (GET 1, POST 5).\n\n")
	b.WriteString("| answer mode | L | approach | overhead p50 | overhead p99 | ok | errors | misattributed | counted/dispatch | requests/dispatch | points/dispatch |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range r.Overhead {
		p50, p99 := ms(c.P50), ms(c.P99)
		if c.OK == 0 {
			p50, p99 = "—", "—"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %d | %d | %d | %.2f | %.2f | %.1f |\n", c.Mode, c.L, c.Approach, p50, p99, c.OK, c.Errors, c.Misattributed, c.Counted, c.Total, c.Points)
	}
	b.WriteString("\n" + r.ratios() + "\n")

	b.WriteString("## 3. Concurrency: dispatches of one workflow and ref at once, 204 answers\n\n")
	fmt.Fprintf(&b, "Without run details, concurrent dispatches of one workflow and ref can only be told apart by something the run carries: "+
		"kargo-gha runs here with `correlationInput: %s`, echoed in the workflow's `run-name`, as the README advises. "+
		"The baselines dispatch as they always do. Without a key, kargo-gha sends dispatches of one workflow and ref one at a time "+
		"within a process, each after the one before has decided its run (%s settle + %s); the last row shows what that costs.\n\n",
		correlationInput, secs(dispatch.DefaultSettle), secs(settleMargin))
	b.WriteString("| approach | dispatches | ok | errors | misattributed | runs claimed twice | wall time | requests | counted | peak heap in use |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range r.Concurrency {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %s | %d | %d | %d MiB |\n", c.Approach, c.N, c.OK, c.Errors, c.Misattributed, c.ClaimedTwice, c.Wall.Round(10*time.Millisecond), c.Requests, c.Counted, c.PeakHeapMiB)
	}
	for _, c := range r.Concurrency {
		if strings.HasPrefix(c.Approach, "kargo-gha, no key") && len(c.Times) > 0 {
			t := make([]string, len(c.Times))
			for i, d := range c.Times {
				t[i] = secs(d.Round(100 * time.Millisecond))
			}
			fmt.Fprintf(&b, "\nWithout a key, the %d dispatches' times to their run IDs: %s.\n", len(c.Times), strings.Join(t, ", "))
		}
	}
	b.WriteString("\n## 4. GitHub App token exchanges\n\n| approach | dispatches | token exchanges | errors |\n|---|---|---|---|\n")
	for _, t := range r.Tokens {
		fmt.Fprintf(&b, "| %s | %d | %d | %d |\n", t.Approach, t.N, t.Exchanges, t.Errors)
	}
	b.WriteString("\n## 5. Waiting on a run\n\nOne run that goes queued → in_progress → completed over about 20 checks, the number of checks in 10 minutes at `pollInterval: 30s`.\n\n")
	b.WriteString("| approach | checks | counted requests | counted per 10 min at 30 s |\n|---|---|---|---|\n")
	for _, w := range r.Wait {
		fmt.Fprintf(&b, "| %s | %d | %d | %.1f |\n", w.Approach, w.Checks, w.Counted, w.CountedPer10Min)
	}
	b.WriteString("\n## 6. Request budget of command-line invocations\n\nEach invocation is a fresh `kargo-gha` (nothing cached, nothing known of the host), as in a custom step or a CI job. Counted requests are those GitHub counts against the rate limit.\n\n| invocation | invocations | counted requests | per invocation | unexpected exits |\n|---|---|---|---|---|\n")
	for _, x := range r.Budgets {
		fmt.Fprintf(&b, "| %s | %d | %d | %.2f | %d |\n", x.What, x.Invocations, x.Counted, x.PerCall, x.Errors)
	}
	b.WriteString(r.scaleMarkdown())
	b.WriteString("\n## Targets\n\n" + r.targets())
	b.WriteString("\n## Reading the numbers\n\n" + r.reading())
	return b.String()
}

// reading explains the numbers. What it says of the dispatcher follows
// pkg/dispatch's constants; what it says of a measurement comes from this
// run's results.
func (r *results) reading() string {
	var b strings.Builder
	b.WriteString(`- Baseline (a) waits on a fixed 5 s grid, so its overhead is about 5 s − L. When L
  falls on the grid (L = 5 s here), it polls just as the run appears and looks fast;
  with real, varying L it averages 2.5 s and takes the wrong run whenever two
  dispatches overlap (section 3).
`)
	var p50s []string
	for _, c := range r.Overhead {
		if c.Approach == "kargo-gha" && c.Mode != modeName(0) && c.OK > 0 {
			p50s = append(p50s, fmt.Sprintf("%s at L = %s", secs((c.P50+c.L).Round(100*time.Millisecond)), c.L))
		}
	}
	measured := ""
	if len(p50s) > 0 && r.realTime() {
		measured = "\n  Measured here (p50, from the dispatch): " + strings.Join(p50s, ", ") + "."
	}
	fmt.Fprintf(&b, `- In 204 mode without a key, this project takes a run only once %s (the settle)
  plus %s (created_at's whole second, and the 2 s a listing may lag behind a new
  run) have passed after the dispatch with no second run in its window: without run
  details or a correlation key, that is what keeps it from taking another
  dispatcher's run (baseline (a) takes the wrong run whenever dispatches overlap,
  section 3). The price is %s to %s from the dispatch to the decision, whatever
  L is (the window opens up to 2 s before the dispatch, as GitHub's Date and
  created_at have whole seconds), and the run ID comes with the next listing
  after it (listings are 0.5–2 s apart). It is also why dispatches of one workflow and ref
  without a key go out one at a time within a process. With correlationInput the
  run is taken as soon as a listing shows it carrying the key, concurrently
  (section 3).%s
`, secs(dispatch.DefaultSettle), secs(settleMargin), secs(dispatch.DefaultSettle+settleMargin-2*time.Second), secs(dispatch.DefaultSettle+settleMargin), measured)
	b.WriteString(`- The counted requests of a 204-mode dispatch are the dispatch itself and the
  listings that changed; the checks in between are conditional and answered 304,
  which costs nothing (requests/dispatch counts them). A process's first dispatch
  without a key also asks GET /user once per token, to leave other users' runs
  out; the warm-up dispatch made that request here, outside the count.
- The simulator answers on loopback in about a millisecond; against github.com add
  the network round trips to every overhead here.
`)
	return b.String()
}

// ratios compares this project with the baselines at each L (p50 overhead
// and counted requests).
func (r *results) ratios() string {
	var b strings.Builder
	b.WriteString("Ratios, baseline ÷ kargo-gha (higher is better for kargo-gha), p50 overhead and counted requests:\n\n| answer mode | L | vs (a) overhead | vs (a) counted | vs (b) overhead |\n|---|---|---|---|---|\n")
	find := func(mode, approach string, l time.Duration) *overheadCell {
		for i, c := range r.Overhead {
			if c.Mode == mode && strings.HasPrefix(c.Approach, approach) && c.L == l && c.OK > 0 {
				return &r.Overhead[i]
			}
		}
		return nil
	}
	for _, c := range r.Overhead {
		if c.Approach != "kargo-gha" || c.OK == 0 {
			continue
		}
		a, bb := find(c.Mode, "baseline: fixed", c.L), find(c.Mode, "baseline: run details", c.L)
		ra, rc, rb := "—", "—", "fails (no run details)"
		if a != nil && c.P50 > 0 {
			ra, rc = fmt.Sprintf("%.1f×", float64(a.P50)/float64(c.P50)), fmt.Sprintf("%.1f×", a.Counted/c.Counted)
		}
		if bb != nil && c.P50 > 0 {
			rb = fmt.Sprintf("%.2f×", float64(bb.P50)/float64(c.P50))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", c.Mode, c.L, ra, rc, rb)
	}
	return b.String()
}

func (r *results) targets() string {
	var b strings.Builder
	b.WriteString("| target | measured | met |\n|---|---|---|\n")
	check := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "**no**"
	}
	// Timings on the short setting's fast clock are not judged.
	timed := func(ok bool) string {
		if !r.realTime() {
			return "— (fast clock)"
		}
		return check(ok)
	}
	for _, c := range r.Overhead {
		if c.Approach != "kargo-gha" {
			continue
		}
		if c.Mode == modeName(0) {
			fmt.Fprintf(&b, "| run details, L=%s: 1 counted request per dispatch | %.2f | %s |\n", c.L, c.Counted, check(c.Counted <= 1.0001))
			fmt.Fprintf(&b, "| run details, L=%s: overhead p50 < 50 ms | %s | %s |\n", c.L, ms(c.P50), timed(c.P50 < 50*time.Millisecond))
		} else {
			fmt.Fprintf(&b, "| 204, L=%s: ≤ 5 counted requests per dispatch | %.2f | %s |\n", c.L, c.Counted, check(c.Counted <= 5))
			fmt.Fprintf(&b, "| 204, L=%s: overhead p50 within the %s settle + %s + 1.5 s (%s) | %s, %s | %s |\n", c.L,
				secs(dispatch.DefaultSettle), secs(settleMargin), secs(runIDTarget), ms(c.P50), ms(c.P99), timed(c.OK > 0 && c.P50 < runIDTarget))
		}
	}
	for _, c := range r.Concurrency {
		if strings.HasPrefix(c.Approach, "kargo-gha") {
			fmt.Fprintf(&b, "| concurrency (%s, %d): 0 errors, 0 misattributed, 0 claimed twice | %d, %d, %d | %s |\n", strings.TrimPrefix(c.Approach, "kargo-gha, "), c.N,
				c.Errors, c.Misattributed, c.ClaimedTwice, check(c.Misattributed == 0 && c.ClaimedTwice == 0 && c.Errors == 0 && c.OK == c.N))
		}
	}
	for _, t := range r.Tokens {
		if !strings.HasPrefix(t.Approach, "baseline") {
			fmt.Fprintf(&b, "| 1 token exchange per installation per token lifetime | %d for %d dispatches | %s |\n", t.Exchanges, t.N, check(t.Exchanges == 1))
		}
	}
	for _, w := range r.Wait {
		if !strings.HasPrefix(w.Approach, "baseline") {
			fmt.Fprintf(&b, "| wait: ≤ 1 counted request per pollInterval, none for unchanged answers | %d counted for %d checks (one per status) | %s |\n", w.Counted, w.Checks, check(w.Counted <= 3))
		}
	}
	return b.String()
}

// chart plots p50 overhead against L for each approach and answer mode.
func (r *results) chart(path string) error {
	p := plot.New()
	p.Title.Text = "Time to run ID beyond run creation (p50)"
	p.X.Label.Text = "L: GitHub's run-creation delay (s)"
	p.Y.Label.Text = "overhead (s, log scale)"
	// Overheads span milliseconds to seconds: a log scale shows both.
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Min, p.Y.Max = 0.005, 10
	for _, c := range r.Overhead {
		if c.OK > 0 && c.P50.Seconds()*1.5 > p.Y.Max {
			p.Y.Max = c.P50.Seconds() * 1.5 // the 204-mode settle is above 10 s
		}
	}
	series := map[string]plotter.XYs{}
	var names []string
	for _, c := range r.Overhead {
		if c.OK == 0 {
			continue
		}
		name := c.Approach + ", " + c.Mode
		if _, ok := series[name]; !ok {
			names = append(names, name)
		}
		series[name] = append(series[name], plotter.XY{X: c.L.Seconds(), Y: max(c.P50.Seconds(), 0.005)})
	}
	for i, name := range names {
		line, points, err := plotter.NewLinePoints(series[name])
		if err != nil {
			return err
		}
		line.Color = plotutil.Color(i)
		line.Dashes = plotutil.Dashes(i)
		points.Color = plotutil.Color(i)
		points.Shape = plotutil.Shape(i)
		p.Add(line, points)
		p.Legend.Add(name, line, points)
	}
	// Top right: the baselines start high on the left and fall to the right.
	p.Legend.Top = true
	p.Legend.Left = false
	p.Add(plotter.NewGrid())
	p.BackgroundColor = color.White
	return p.Save(9*vg.Inch, 5*vg.Inch, path)
}

// machine describes where the numbers were taken.
func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "model name") {
				cpu = strings.TrimSpace(strings.SplitN(line, ":", 2)[1])
				break
			}
		}
	}
	return fmt.Sprintf("%d cores, %s, %s %s/%s", runtime.NumCPU(), cpu, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
