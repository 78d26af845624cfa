package step

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/kargo-gha/kargo-gha/internal/repourl"
	"github.com/kargo-gha/kargo-gha/internal/safetext"
	"github.com/kargo-gha/kargo-gha/pkg/dispatch"
	"github.com/kargo-gha/kargo-gha/pkg/wait"
)

// Kargo v1.11's UI shows a step output "links", a list of {url, icon,
// tooltip, label}, as deep links on the Promotion and on its step
// (ui/src/plugins/output-links-plugin in akuity/kargo): url must be an
// http or https URL, the other three are optional strings, and an entry
// that does not fit is dropped. An icon the UI knows is drawn without the
// label (the label becomes the tooltip when there is none); an unknown one
// becomes a generic external-link icon with the label beside it.
const (
	// iconRun is the run's link: GitHub's mark, in the UI's table.
	iconRun = "faGithub"
	// iconJob is a failed job's link: a file of code (its log), in the
	// UI's table.
	iconJob = "faFileCode"
	// iconApproval is the link to approve a waiting run, in the UI's table.
	iconApproval = "faCheckCircle"
	// maxLinks bounds the list: the run, the failed jobs a message names
	// (wait's maxNamedJobs, 3), an approval; more would crowd the UI.
	maxLinks = 6
	// maxLinkText bounds a label or tooltip.
	maxLinkText = 200
)

// link is one entry of the links output.
type link struct {
	url, icon, tooltip, label string
}

// webOrigin is the web origin of the repository's host: https://github.com
// for api.github.com, https://HOST for an Enterprise Server at
// https://HOST/api/v3. Links go there and nowhere else.
func webOrigin(repo repourl.Repository) string {
	return strings.TrimSuffix(repo.WebURL(), "/"+repo.FullName())
}

// onOrigin reports a URL the UI may show: absolute http or https, on the
// repository's web origin, with no user info, white space or control
// characters (a server's answer is not trusted to name where people go).
func onOrigin(raw, origin string) bool {
	if raw == "" || strings.ContainsAny(raw, " \t\r\n\x1b\x7f\"<>\\") || safetext.Clean(raw) != raw {
		return false // a URL that cleaning would change (a secret in it) is not shown
	}
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Opaque != "" || (u.Scheme != "https" && u.Scheme != "http") {
		return false
	}
	return u.Scheme+"://"+u.Host == origin && (u.Path == "" || strings.HasPrefix(u.Path, "/"))
}

// linksValue is links as step output: only entries on origin, at most
// maxLinks, texts cleaned and bounded; nil when none is left.
func linksValue(origin string, links ...link) []any {
	var out []any
	for _, l := range links {
		if len(out) == maxLinks {
			break
		}
		if !onOrigin(l.url, origin) {
			continue
		}
		m := map[string]any{"url": l.url}
		for k, v := range map[string]string{"icon": l.icon, "tooltip": l.tooltip, "label": l.label} {
			if v = linkText(v); v != "" {
				m[k] = v
			}
		}
		out = append(out, m)
	}
	return out
}

func linkText(s string) string {
	s = safetext.Clean(s)
	if len(s) > maxLinkText {
		s = s[:maxLinkText] + "…"
	}
	return s
}

// runLink is the run's page.
func runLink(runID int64, htmlURL, what string) link {
	return link{url: htmlURL, icon: iconRun, label: fmt.Sprintf("Run %d", runID), tooltip: fmt.Sprintf("GitHub Actions run %d%s", runID, what)}
}

// waitLinks are the wait step's links for st: the run; while it waits for
// an approval, the run's page once more as the place to approve it (GitHub
// reviews deployments there, "Review deployments"); once it failed, each
// failed job named.
func waitLinks(origin string, st *wait.Status, pending string) []any {
	links := []link{runLink(st.RunID, st.HTMLURL, ": "+st.Status)}
	if st.Status == "waiting" && pending != "" {
		links = append(links, link{url: st.HTMLURL, icon: iconApproval, label: fmt.Sprintf("Approve run %d", st.RunID),
			tooltip: fmt.Sprintf("run %d is %s: review its deployment on the run's page", st.RunID, pending)})
	}
	for _, j := range st.FailedJobs {
		tip := j.String()
		links = append(links, link{url: j.URL, icon: iconJob, label: "Job " + j.Name, tooltip: tip})
	}
	return linksValue(origin, links...)
}

// runFacts adds what is known of the run to out: its commit and branch
// when known, and its links when any is left.
func runFacts(out map[string]any, headSHA, headBranch string, links []any) map[string]any {
	if headSHA != "" {
		out[outHeadSHA] = headSHA
	}
	if headBranch != "" {
		out[outHeadBranch] = headBranch
	}
	if len(links) > 0 {
		out[outLinks] = links
	}
	return out
}

// withRun adds the wait step's run facts to out.
func (w *waitCall) withRun(out map[string]any, st *wait.Status) map[string]any {
	return runFacts(out, st.HeadSHA, st.HeadBranch, waitLinks(webOrigin(w.t.client.Repo), st, w.st.pending))
}

// withRun adds the dispatched run's facts to out.
func (d *dispatchCall) withRun(out map[string]any, run *dispatch.Run) map[string]any {
	what := fmt.Sprintf(": %s on %s", d.cfg.WorkflowFile, d.cfg.Ref)
	return runFacts(out, run.HeadSHA, run.HeadBranch, linksValue(webOrigin(d.t.client.Repo), runLink(run.ID, run.HTMLURL, what)))
}
