package main

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// scaleChartName is scenario 7's chart, beside the main one.
const scaleChartName = "performance-scale.png"

func scaleChartPath(mainChart string) string {
	return filepath.Join(filepath.Dir(mainChart), scaleChartName)
}

// measureScaleInto measures scenario 7 and writes it into the report
// beside out, keeping the other scenarios' saved numbers.
func measureScaleInto(out, chart string, short bool) error {
	raw := strings.TrimSuffix(out, filepath.Ext(out)) + ".json"
	r, err := load(raw)
	if err != nil {
		return err
	}
	ss, cmd := fullScale, "cd bench && go run . -scale"
	if short {
		ss, cmd = shortScale, cmd+" -short"
	}
	logf := func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }
	if r.Scale, err = runScales(ss, logf); err != nil {
		return err
	}
	if r.ScaleMixed, err = runMixedScales(ss, logf); err != nil {
		return err
	}
	r.ScaleCommand, r.ScaleMachine, r.ScaleDate = cmd, machine(), time.Now().UTC().Format("2006-01-02")
	return write(r, out, chart)
}

// scaleMarkdown is scenario 7's section of the report.
func (r *results) scaleMarkdown() string {
	if len(r.Scale) == 0 {
		return ""
	}
	var b strings.Builder
	s := r.Scale[0]
	fmt.Fprintf(&b, "\n## 7. A thousand promotions on one token\n\n")
	if r.ScaleCommand != "" {
		fmt.Fprintf(&b, "Measured by `%s` on %s (%s).\n\n", r.ScaleCommand, r.ScaleDate, r.ScaleMachine)
	}
	fmt.Fprintf(&b, "One Runner (one Kargo controller) on one token: %d waits on runs that exist, and %d promotions that dispatch (with `correlationInput`) and then wait on their run, over %d workflows; runs queue %s and run %s. ", s.Waits, s.Dispatches, s.Workflows, s.Queued, s.Running)
	fmt.Fprintf(&b, "Each promotion is called again after its `RetryAfter`, never sooner than Kargo's 10 s; promotions start spread over the first minute; %.0f simulated minutes on a fake clock shared with the simulator, moved a second at a time once every call due has returned (so the counts per minute are exact); engine-call times are wall time with 4 calls at once. ", s.Minutes)
	b.WriteString("**per-run (before)** is every wait reading its own run each call (`wait.Checker.PerRun`), as before shared listings; **shared listing** is today's default.\n\n")
	fmt.Fprintf(&b, "![Requests per minute, per-run against shared listing](%s)\n\n", scaleChartName)
	fmt.Fprintf(&b, "**Steady** is minutes %g to %g, when every promotion has started and no wait's run has completed: what following runs costs. **Whole** is the whole scenario: each run's first read (which names its workflow), the dispatches and their searches, the change to in_progress and each run's final read included.\n\n", s.SteadyFrom.Minutes(), s.SteadyTo.Minutes())
	b.WriteString("| answer mode | polling | steady requests/min | steady counted/min | steady listings/min | steady run reads/min | whole requests/min | whole counted/min | whole 304s/min | engine calls | engine call p50 | p99 | succeeded | errors | misattributed | heap after GC | peak heap |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, x := range r.Scale {
		fmt.Fprintf(&b, "| %s | %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %d | %s | %s | %d of %d | %d | %d | %.1f MiB | %d MiB |\n",
			x.Mode, x.Polling, x.SteadyRequestsPerMin, x.SteadyCountedPerMin, x.SteadyListingsPerMin, x.SteadyRunReadsPerMin,
			x.RequestsPerMin, x.CountedPerMin, x.NotModifiedPerMin, x.Calls,
			ms(x.P50), ms(x.P99), x.Succeeded, x.Waits+x.Dispatches, x.Errors, x.Misattributed, x.HeapMiB, x.PeakHeapMiB)
	}
	b.WriteString(r.mixedMarkdown())
	b.WriteString("\n" + r.scaleTargets() + "\n")
	b.WriteString("\nRequests count every answer, 304s included: GitHub's secondary limits count them all; counted requests are those the primary limit counts. ")
	b.WriteString("With a shared listing, a workflow with several runs followed costs at most 12 listings a minute (`wait.DefaultListingAge`, 5 s), however many runs; per-run polling costs one request per run every 10 s. ")
	b.WriteString("The token's limit is set high in this scenario so that pacing never stretches a call and both ways of polling are called as often (pacing: docs/reliability.md). ")
	b.WriteString("The heap figures are the whole benchmark process, the simulator and its 1,100 runs included; the live heap after a GC is what stays.\n")
	return b.String()
}

// scaleTargets checks issue 23's: with a shared listing, steady requests
// per minute at most 12 per workflow (a small multiple of the workflows,
// not of the runs), no misattribution, every promotion succeeded.
func (r *results) scaleTargets() string {
	var b strings.Builder
	for _, x := range r.Scale {
		if x.Polling != "shared listing" {
			continue
		}
		ok := x.SteadyRequestsPerMin <= 12*float64(x.Workflows) && x.Misattributed == 0 && x.Succeeded == x.Waits+x.Dispatches
		verdict := "met"
		if !ok {
			verdict = "**not met**"
		}
		fmt.Fprintf(&b, "- %s, shared listing: %.0f steady requests a minute for %d runs of %d workflows (%.1f per workflow; target at most 12), %d misattributed, %d of %d succeeded: %s.\n",
			x.Mode, x.SteadyRequestsPerMin, x.Waits+x.Dispatches, x.Workflows, x.SteadyRequestsPerMin/float64(x.Workflows), x.Misattributed, x.Succeeded, x.Waits+x.Dispatches, verdict)
	}
	return b.String()
}

// scaleChart plots requests per minute by mode: per-run against shared,
// steady and whole.
func (r *results) scaleChart(path string) error {
	if len(r.Scale) == 0 {
		return nil
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%d waits + %d dispatches in one Runner on one token (%d workflows)", r.Scale[0].Waits, r.Scale[0].Dispatches, r.Scale[0].Workflows)
	p.Y.Label.Text = "requests per minute, 304s included"
	var modes []string
	type series struct {
		name   string
		polled string
		steady bool
	}
	all := []series{{"per-run, steady", "per-run (before)", true}, {"shared listing, steady", "shared listing", true},
		{"per-run, whole scenario", "per-run (before)", false}, {"shared listing, whole scenario", "shared listing", false}}
	by := map[string]plotter.Values{}
	top := 0.0
	for _, x := range r.Scale {
		if len(modes) == 0 || modes[len(modes)-1] != x.Mode {
			modes = append(modes, x.Mode)
		}
		for _, sr := range all {
			if sr.polled != x.Polling {
				continue
			}
			v := x.RequestsPerMin
			if sr.steady {
				v = x.SteadyRequestsPerMin
			}
			by[sr.name] = append(by[sr.name], v)
			top = max(top, v)
		}
	}
	w := vg.Points(22)
	for i, sr := range all {
		bars, err := plotter.NewBarChart(by[sr.name], w)
		if err != nil {
			return err
		}
		bars.Color = plotutil.Color(i)
		bars.Offset = vg.Length(2*i-3) * w / 2
		p.Add(bars)
		p.Legend.Add(sr.name, bars)
	}
	p.Y.Min, p.Y.Max = 0, top*1.45 // room above the bars for the legend
	p.NominalX(modes...)
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	p.BackgroundColor = color.White
	return p.Save(8*vg.Inch, 4.5*vg.Inch, path)
}

// mixedMarkdown is the mixed case's table: dispatch searches and waits on
// the same workflows, one shared listing between them.
func (r *results) mixedMarkdown() string {
	if len(r.ScaleMixed) == 0 {
		return ""
	}
	var b strings.Builder
	m := r.ScaleMixed[0]
	fmt.Fprintf(&b, "\n**Mixed**: the same waits, and the %d dispatches spread over the first %s (half with `correlationInput`, half without, so searches list all through the steady window) on the same workflows, %.0f simulated minutes; waits and searches read one listing per workflow (`internal/runlist`), a search only when its 100 most recent runs reach back before the search's window, else it lists on its own with its filters.\n\n", m.Dispatches, m.DispatchSpread, m.Minutes)
	b.WriteString("| answer mode | polling | steady requests/min | steady counted/min | steady listings/min | steady run reads/min | whole requests/min | whole counted/min | engine calls | succeeded | errors | misattributed |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, x := range r.ScaleMixed {
		fmt.Fprintf(&b, "| %s | %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %d | %d of %d | %d | %d |\n", x.Mode, x.Polling, x.SteadyRequestsPerMin, x.SteadyCountedPerMin,
			x.SteadyListingsPerMin, x.SteadyRunReadsPerMin, x.RequestsPerMin, x.CountedPerMin, x.Calls, x.Succeeded, x.Waits+x.Dispatches, x.Errors, x.Misattributed)
	}
	return b.String()
}
