package ghsim

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const docsBase = "https://docs.github.com/rest"

type ctxKey struct{}

// handler strips the Enterprise Server prefix, then routes.
func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches", s.route("dispatch", s.dispatch))
	mux.HandleFunc("GET /repos/{owner}/{repo}/actions/workflows/{workflow}/runs", s.route("list-runs", s.listRuns))
	mux.HandleFunc("GET /repos/{owner}/{repo}/actions/runs", s.route("list-runs", s.listRuns))
	mux.HandleFunc("GET /repos/{owner}/{repo}/actions/runs/{id}", s.route("get-run", s.getRun))
	mux.HandleFunc("GET /repos/{owner}/{repo}/actions/runs/{id}/jobs", s.route("jobs", s.listJobs))
	mux.HandleFunc("GET /repos/{owner}/{repo}/actions/runs/{id}/pending_deployments", s.route("pending-deployments", s.pendingDeployments))
	mux.HandleFunc("POST /app/installations/{id}/access_tokens", s.route("token", s.exchangeToken))
	mux.HandleFunc("GET /meta", s.route("meta", s.meta))
	mux.HandleFunc("GET /user", s.route("user", s.user))
	mux.HandleFunc("GET /repos/{owner}/{repo}", s.route("get-repo", s.getRepo))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "Not Found", docsBase)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		root := apiRoot{api: "https://" + r.Host, web: "https://" + r.Host}
		if p, ok := strings.CutPrefix(r.URL.Path, "/api/v3"); ok && (p == "" || p[0] == '/') {
			root = apiRoot{api: "https://" + r.Host + "/api/v3", web: "https://" + r.Host, ghes: true}
			r2 := r.Clone(context.WithValue(r.Context(), ctxKey{}, root))
			r2.URL.Path = p
			r2.URL.RawPath = strings.TrimPrefix(r.URL.RawPath, "/api/v3")
			r = r2
		} else {
			if r.Host == "api.github.com" {
				root.web = "https://github.com"
			}
			r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, root))
		}
		w.Header().Set("X-GitHub-Request-Id", randomHex(8))
		mux.ServeHTTP(&dateWriter{ResponseWriter: w, s: s}, r)
	})
}

// dateWriter writes the Date header from the simulator's clock when the
// answer starts (net/http adds one from the wall clock only when there is
// none): the time the answer was made, after any pause in the handler.
type dateWriter struct {
	http.ResponseWriter
	s     *Server
	wrote bool
}

func (d *dateWriter) WriteHeader(code int) {
	if !d.wrote {
		d.wrote = true
		d.s.setDate(d.Header())
	}
	d.ResponseWriter.WriteHeader(code)
}

func (d *dateWriter) Write(b []byte) (int, error) {
	if !d.wrote {
		d.WriteHeader(http.StatusOK)
	}
	return d.ResponseWriter.Write(b)
}

// setDate sets Date to the clock's time, DateSkew off it; with NoDate a nil
// entry keeps net/http from adding its own.
func (s *Server) setDate(h http.Header) {
	if s.opts.NoDate {
		h["Date"] = nil
		return
	}
	h.Set("Date", s.now().Add(s.opts.DateSkew).UTC().Format(http.TimeFormat))
}

func rootOf(r *http.Request) apiRoot { return r.Context().Value(ctxKey{}).(apiRoot) }

// route counts the request, applies faults, authentication and rate limits,
// then calls h. The fault is handed to h for AfterAction faults.
func (s *Server) route(name string, h func(http.ResponseWriter, *http.Request, string, *Fault)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.opts.Observe != nil {
			body, _ := io.ReadAll(io.LimitReader(r.Body, maxDispatchBody))
			r.Body = io.NopCloser(bytes.NewReader(body))
			rec := &recorder{ResponseWriter: w, status: http.StatusOK}
			w = rec
			defer func() {
				s.opts.Observe(Exchange{Route: name, Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), RequestBody: body, Status: rec.status, Body: rec.body.Bytes()})
			}()
		}
		s.mu.Lock()
		s.stats.Requests++
		s.stats.ByRoute[name]++
		if r.Method == http.MethodGet {
			s.stats.SecondaryPoints++
		} else {
			s.stats.SecondaryPoints += 5
		}
		f := s.fault(name)
		s.mu.Unlock()
		if f != nil && !f.AfterAction {
			s.applyFault(w, f)
			return
		}
		login := ""
		if name != "token" {
			var ok bool
			if login, ok = s.authenticate(w, r); !ok {
				return
			}
			if !s.rateLimit(w, r, login) {
				return
			}
		}
		h(w, r, login, f)
	}
}

func (s *Server) applyFault(w http.ResponseWriter, f *Fault) {
	switch {
	case f.Drop:
		panic(http.ErrAbortHandler) // closes the connection (HTTP/1) or resets the stream (HTTP/2)
	case f.PrimaryRateLimit:
		h := w.Header()
		h.Set("X-RateLimit-Limit", "5000")
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Used", "5000")
		h.Set("X-RateLimit-Reset", strconv.FormatInt(s.now().Add(time.Hour).Unix(), 10))
		h.Set("X-RateLimit-Resource", "core")
		writeError(w, http.StatusForbidden, "API rate limit exceeded for installation ID 99. If you reach out to GitHub Support for help, please include the request ID.",
			"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-the-primary-rate-limit")
	case f.SecondaryRateLimit > 0 && f.Undocumented:
		// A rate limit recognisable only by its headers (a GHES or proxy
		// that words it differently): 429 or 403 with Retry-After.
		w.Header().Set("Retry-After", strconv.Itoa(int((f.SecondaryRateLimit+time.Second-1)/time.Second)))
		status := f.Status
		if status == 0 {
			status = http.StatusForbidden
		}
		writeError(w, status, "Too many requests", docsBase)
	case f.SecondaryRateLimit > 0:
		w.Header().Set("Retry-After", strconv.Itoa(int((f.SecondaryRateLimit+time.Second-1)/time.Second)))
		writeError(w, http.StatusForbidden, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID.",
			"https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits")
	default:
		status := f.Status
		if status == 0 {
			status = http.StatusBadGateway
		}
		writeError(w, status, http.StatusText(status), docsBase)
	}
}

// authenticate checks the token; GitHub answers 401 "Bad credentials".
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (string, bool) {
	tok := bearer(r)
	s.mu.Lock()
	info := s.tokens[tok]
	s.mu.Unlock()
	if tok == "" {
		writeError(w, http.StatusUnauthorized, "Requires authentication", docsBase)
		return "", false
	}
	if info == nil || (!info.expiresAt.IsZero() && s.now().After(info.expiresAt)) {
		writeError(w, http.StatusUnauthorized, "Bad credentials", docsBase)
		return "", false
	}
	if info.repos != nil && r.PathValue("owner") != "" && !info.repos[strings.ToLower(r.PathValue("owner")+"/"+r.PathValue("repo"))] {
		writeError(w, http.StatusNotFound, "Not Found", docsBase)
		return "", false
	}
	if info.readOnly && r.Method != http.MethodGet {
		writeError(w, http.StatusForbidden, "Resource not accessible by personal access token", docsBase+"/actions/workflows#create-a-workflow-dispatch-event")
		return "", false
	}
	return tok, true
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	for _, p := range []string{"Bearer ", "bearer ", "token "} {
		if t, ok := strings.CutPrefix(h, p); ok {
			return strings.TrimSpace(t)
		}
	}
	return ""
}

// rateLimit applies and reports the primary rate limit (github.com only:
// Enterprise Server has it off by default and sends no headers then).
// Conditional requests answered 304 are not counted, as on GitHub.
func (s *Server) rateLimit(w http.ResponseWriter, r *http.Request, tok string) bool {
	if rootOf(r).ghes {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if now := s.now(); now.After(s.rateResetAt) {
		s.rateUsed = map[string]int{}
		s.rateResetAt = now.Add(time.Hour).Truncate(time.Second)
	}
	used := s.rateUsed[tok]
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(s.opts.RateLimit))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(s.rateResetAt.Unix(), 10))
	h.Set("X-RateLimit-Resource", "core")
	if used >= s.opts.RateLimit {
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Used", strconv.Itoa(used))
		writeError(w, http.StatusForbidden, "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID.",
			"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-the-primary-rate-limit")
		return false
	}
	// Counted now; undone by notModified for 304 answers.
	s.rateUsed[tok] = used + 1
	s.stats.Counted++
	h.Set("X-RateLimit-Remaining", strconv.Itoa(s.opts.RateLimit-used-1))
	h.Set("X-RateLimit-Used", strconv.Itoa(used+1))
	return true
}

// writeJSON answers with body, or 304 when the client's If-None-Match holds
// its ETag.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, tok string, status int, body any) {
	b, err := json.Marshal(body)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error(), docsBase)
		return
	}
	sum := sha256.Sum256(b)
	etag := `W/"` + hex.EncodeToString(sum[:16]) + `"`
	if r.Method == http.MethodGet {
		w.Header().Set("ETag", etag)
		w.Header().Set("Cache-Control", "private, max-age=60, s-maxage=60")
		w.Header().Set("Vary", "Accept, Authorization, Cookie, X-GitHub-OTP")
		if inm := r.Header.Get("If-None-Match"); inm != "" && (inm == etag || strings.TrimPrefix(inm, "W/") == strings.TrimPrefix(etag, "W/")) {
			s.notModified(w, r, tok)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (s *Server) notModified(w http.ResponseWriter, r *http.Request, tok string) {
	s.mu.Lock()
	s.stats.NotModified++
	if !rootOf(r).ghes {
		s.stats.Counted--
		s.rateUsed[tok]--
		w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(s.opts.RateLimit-s.rateUsed[tok]))
		w.Header().Set("X-RateLimit-Used", strconv.Itoa(s.rateUsed[tok]))
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusNotModified)
}

func writeError(w http.ResponseWriter, status int, msg, doc string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg, "documentation_url": doc, "status": strconv.Itoa(status)})
}

type dispatchBody struct {
	Ref              *string        `json:"ref"`
	Inputs           map[string]any `json:"inputs"`
	ReturnRunDetails *bool          `json:"return_run_details"`
}

const maxDispatchBody = 1 << 20

func (s *Server) dispatch(w http.ResponseWriter, r *http.Request, tok string, f *Fault) {
	root := rootOf(r)
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxDispatchBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, "Problems parsing JSON", docsBase)
		return
	}
	var keys map[string]json.RawMessage
	var body dispatchBody
	if json.Unmarshal(raw, &keys) != nil || json.Unmarshal(raw, &body) != nil {
		writeError(w, http.StatusBadRequest, "Problems parsing JSON", docsBase)
		return
	}
	for k := range keys {
		if k != "ref" && k != "inputs" && (k != "return_run_details" || s.opts.Answer == AnswerGHES320) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("Invalid request.\n\n%q is not a permitted key.", k), docsBase+"/actions/workflows#create-a-workflow-dispatch-event")
			return
		}
	}
	if body.Ref == nil || *body.Ref == "" {
		writeError(w, http.StatusUnprocessableEntity, "Invalid request.\n\n\"ref\" wasn't supplied.", docsBase+"/actions/workflows#create-a-workflow-dispatch-event")
		return
	}
	maxInputs := 25
	if root.ghes && strings.HasPrefix(s.opts.GHESVersion, "3.") {
		if minor, _ := strconv.Atoi(strings.Split(s.opts.GHESVersion, ".")[1]); minor < 21 {
			maxInputs = 10
		}
	}
	if len(body.Inputs) > maxInputs {
		writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("you may only define up to %d `inputs` for a `workflow_dispatch` event", maxInputs), docsBase+"/actions/workflows#create-a-workflow-dispatch-event")
		return
	}
	if in, _ := json.Marshal(body.Inputs); len(body.Inputs) > 0 && len([]rune(string(in))) > 65535 {
		writeError(w, http.StatusUnprocessableEntity, "inputs are too large", docsBase+"/actions/workflows#create-a-workflow-dispatch-event")
		return
	}
	ref := strings.TrimPrefix(strings.TrimPrefix(*body.Ref, "refs/heads/"), "refs/tags/")

	s.mu.Lock()
	repo := s.repo(r.PathValue("owner"), r.PathValue("repo"))
	var wf *Workflow
	if repo != nil {
		wf = repo.workflows[r.PathValue("workflow")]
	}
	switch {
	case repo == nil || wf == nil:
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "Not Found", docsBase+"/actions/workflows#create-a-workflow-dispatch-event")
		return
	case !repo.Refs[ref]:
		s.mu.Unlock()
		writeError(w, http.StatusUnprocessableEntity, "No ref found for: "+*body.Ref, docsBase+"/actions/workflows#create-a-workflow-dispatch-event")
		return
	case len(wf.TriggerRefs) > 0 && !contains(wf.TriggerRefs, ref):
		s.mu.Unlock()
		writeError(w, http.StatusUnprocessableEntity, "Workflow does not have 'workflow_dispatch' trigger", docsBase+"/actions/workflows#create-a-workflow-dispatch-event")
		return
	}
	var unexpected []string
	for k := range body.Inputs {
		if !contains(wf.Inputs, k) {
			unexpected = append(unexpected, k)
		}
	}
	if len(unexpected) > 0 {
		s.mu.Unlock()
		sort.Strings(unexpected)
		q, _ := json.Marshal(unexpected)
		writeError(w, http.StatusUnprocessableEntity, "Unexpected inputs provided: "+string(q), docsBase+"/actions/workflows#create-a-workflow-dispatch-event")
		return
	}
	details := s.opts.Answer == AnswerRunDetails && body.ReturnRunDetails != nil && *body.ReturnRunDetails
	delay := s.opts.RunDelay
	rn := s.newRun(repo, wf, ref, body.Inputs, s.tokens[tok].login, delay)
	s.stats.Dispatches++
	s.mu.Unlock()

	if f != nil && f.AfterAction {
		s.applyFault(w, f)
		return
	}
	if !details {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	// GitHub answers once the run exists. The pause is a Sleep on the
	// simulator's clock: real on the system clock; a fake one moves to
	// createdAt at once, so the answer comes right away and names a run
	// that is already visible.
	if s.clock.Sleep(r.Context(), rn.createdAt.Sub(s.now())) != nil {
		return
	}
	j := rn.json(root, s.now())
	s.writeJSON(w, r, tok, http.StatusOK, map[string]any{"workflow_run_id": rn.id, "run_url": j["url"], "html_url": j["html_url"]})
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func (s *Server) getRun(w http.ResponseWriter, r *http.Request, tok string, f *Fault) {
	now := s.now()
	s.mu.Lock()
	found := s.findRun(r, now)
	var body map[string]any
	if found != nil {
		body = found.json(rootOf(r), now)
	}
	s.mu.Unlock()
	if found == nil {
		writeError(w, http.StatusNotFound, "Not Found", docsBase+"/actions/workflow-runs#get-a-workflow-run")
		return
	}
	if f != nil && f.AfterAction {
		s.applyFault(w, f)
		return
	}
	s.writeJSON(w, r, tok, http.StatusOK, body)
}

func (s *Server) listRuns(w http.ResponseWriter, r *http.Request, tok string, f *Fault) {
	q := r.URL.Query()
	perPage, page := 30, 1
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusUnprocessableEntity, "Invalid per_page", docsBase)
			return
		}
		perPage = min(n, 100)
	}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusUnprocessableEntity, "Invalid page", docsBase)
			return
		}
		page = n
	}
	created, ok := parseCreated(q.Get("created"))
	if !ok {
		writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("Invalid created parameter: %q", q.Get("created")), docsBase+"/actions/workflow-runs#list-workflow-runs-for-a-workflow")
		return
	}
	now := s.now()
	s.mu.Lock()
	repo := s.repo(r.PathValue("owner"), r.PathValue("repo"))
	var wf *Workflow
	if repo != nil && r.PathValue("workflow") != "" {
		if wf = repo.workflows[r.PathValue("workflow")]; wf == nil {
			if id, err := strconv.ParseInt(r.PathValue("workflow"), 10, 64); err == nil {
				for _, w := range repo.workflows {
					if w.ID == id {
						wf = w
					}
				}
			}
		}
	}
	if repo == nil || (r.PathValue("workflow") != "" && wf == nil) {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "Not Found", docsBase+"/actions/workflow-runs#list-workflow-runs-for-a-workflow")
		return
	}
	var match []*run
	for _, rn := range repo.runs {
		st, concl, _ := rn.status(now)
		if s.opts.IgnoreListFilters && rn.visible(now) {
			match = append(match, rn)
			continue
		}
		switch {
		case !rn.visible(now),
			wf != nil && rn.workflow != wf,
			q.Get("event") != "" && q.Get("event") != "workflow_dispatch",
			q.Get("branch") != "" && q.Get("branch") != rn.ref,
			q.Get("actor") != "" && q.Get("actor") != rn.actor,
			q.Get("status") != "" && q.Get("status") != st && q.Get("status") != concl,
			!created(rn.createdAt):
			continue
		}
		match = append(match, rn)
	}
	sort.Slice(match, func(i, j int) bool {
		if !match[i].createdAt.Equal(match[j].createdAt) {
			return match[i].createdAt.After(match[j].createdAt)
		}
		return match[i].id > match[j].id
	})
	total := len(match)
	lo, hi := min((page-1)*perPage, total), min(page*perPage, total)
	items := make([]any, 0, hi-lo)
	for _, rn := range match[lo:hi] {
		items = append(items, rn.json(rootOf(r), now))
	}
	s.mu.Unlock()
	if f != nil && f.AfterAction {
		s.applyFault(w, f)
		return
	}
	setLinks(w, r, page, perPage, total)
	s.writeJSON(w, r, tok, http.StatusOK, map[string]any{"total_count": total, "workflow_runs": items})
}

// setLinks writes GitHub's Link header for pagination.
func setLinks(w http.ResponseWriter, r *http.Request, page, perPage, total int) {
	last := (total + perPage - 1) / perPage
	if last <= 1 {
		return
	}
	link := func(p int, rel string) string {
		u := url.URL{Scheme: "https", Host: r.Host, Path: rootPath(r) + r.URL.Path}
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(p))
		q.Set("per_page", strconv.Itoa(perPage))
		u.RawQuery = q.Encode()
		return fmt.Sprintf("<%s>; rel=%q", u.String(), rel)
	}
	var parts []string
	if page > 1 {
		parts = append(parts, link(page-1, "prev"))
	}
	if page < last {
		parts = append(parts, link(page+1, "next"), link(last, "last"))
	}
	if page > 1 {
		parts = append(parts, link(1, "first"))
	}
	w.Header().Set("Link", strings.Join(parts, ", "))
}

func rootPath(r *http.Request) string {
	if rootOf(r).ghes {
		return "/api/v3"
	}
	return ""
}

// parseCreated understands GitHub's date search syntax: >=T, >T, <=T, <T,
// A..B, and a plain date or date-time. ok is false for anything else.
func parseCreated(v string) (match func(time.Time) bool, ok bool) {
	if v == "" {
		return func(time.Time) bool { return true }, true
	}
	// parse reads a date or date-time; day reports a bare date.
	parse := func(s string) (t time.Time, day, ok bool) {
		for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05"} {
			if t, err := time.Parse(layout, s); err == nil {
				return t, false, true
			}
		}
		t, err := time.Parse("2006-01-02", s)
		return t, true, err == nil
	}
	endOfDay := func(t time.Time, day bool) time.Time {
		if day {
			return t.Add(24*time.Hour - time.Second)
		}
		return t
	}
	for _, op := range []string{">=", "<=", ">", "<"} {
		rest, found := strings.CutPrefix(v, op)
		if !found {
			continue
		}
		t, day, ok := parse(rest)
		if !ok {
			return nil, false
		}
		if op == "<=" || op == ">" {
			t = endOfDay(t, day)
		}
		return func(c time.Time) bool {
			c = c.Truncate(time.Second)
			switch op {
			case ">=":
				return !c.Before(t)
			case "<=":
				return !c.After(t)
			case ">":
				return c.After(t)
			}
			return c.Before(t)
		}, true
	}
	from, to := v, v
	if a, b, found := strings.Cut(v, ".."); found {
		from, to = a, b
	}
	start, _, ok1 := parse(from)
	end, day, ok2 := parse(to)
	if !ok1 || !ok2 {
		return nil, false
	}
	end = endOfDay(end, day)
	return func(c time.Time) bool { c = c.Truncate(time.Second); return !c.Before(start) && !c.After(end) }, true
}

// exchangeToken verifies the App JWT (RS256 against the App's public key,
// lifetime at most 10 minutes) and mints an installation token.
func (s *Server) exchangeToken(w http.ResponseWriter, r *http.Request, _ string, f *Fault) {
	raw := bearer(r)
	var app *App
	claims := jwt.RegisteredClaims{}
	_, err := jwt.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
		iss, _ := t.Claims.GetIssuer()
		s.mu.Lock()
		app = s.appByIssuer(iss)
		s.mu.Unlock()
		if app == nil {
			return nil, fmt.Errorf("unknown issuer")
		}
		return app.PublicKey, nil
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(30*time.Second), jwt.WithTimeFunc(s.now))
	if err != nil || app == nil {
		writeError(w, http.StatusUnauthorized, "A JSON web token could not be decoded", docsBase)
		return
	}
	if claims.IssuedAt == nil || claims.ExpiresAt.Sub(claims.IssuedAt.Time) > 10*time.Minute+time.Second || claims.ExpiresAt.Sub(s.now()) > 10*time.Minute+time.Second {
		writeError(w, http.StatusUnauthorized, "'Expiration time' claim ('exp') is too far in the future", docsBase)
		return
	}
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	repos, ok := app.Installations[id]
	if !ok {
		writeError(w, http.StatusNotFound, "Not Found", docsBase+"/apps/apps#create-an-installation-access-token-for-an-app")
		return
	}
	var body struct {
		Repositories []string `json:"repositories"`
	}
	if b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20)); len(bytes.TrimSpace(b)) > 0 && json.Unmarshal(b, &body) != nil {
		writeError(w, http.StatusBadRequest, "Problems parsing JSON", docsBase)
		return
	}
	scope := map[string]bool{}
	for _, full := range repos {
		owner, name, _ := strings.Cut(strings.ToLower(full), "/")
		if len(body.Repositories) == 0 || contains(lower(body.Repositories), name) {
			scope[owner+"/"+name] = true
		}
	}
	if len(body.Repositories) > 0 && len(scope) < len(body.Repositories) {
		writeError(w, http.StatusUnprocessableEntity, "There is at least one repository that does not exist or is not accessible to the parent installation.", docsBase+"/apps/apps#create-an-installation-access-token-for-an-app")
		return
	}
	tok := "ghs_" + randomHex(18)
	exp := s.now().Add(time.Hour).Truncate(time.Second)
	s.mu.Lock()
	s.tokens[tok] = &tokenInfo{login: "sim-app[bot]", repos: scope, expiresAt: exp}
	s.stats.TokenExchanges++
	s.stats.Counted++
	s.mu.Unlock()
	if f != nil && f.AfterAction {
		s.applyFault(w, f)
		return
	}
	repoList := []any{}
	for full := range scope {
		owner, name, _ := strings.Cut(full, "/")
		repoList = append(repoList, fullRepoJSON(rootOf(r), &Repo{ID: 100, Owner: owner, Name: name}, s.now()))
	}
	s.writeJSON(w, r, "", http.StatusCreated, map[string]any{
		"token": tok, "expires_at": ts(exp), "permissions": map[string]string{"actions": "write", "metadata": "read"},
		"repository_selection": "selected", "repositories": repoList,
	})
}

func lower(in []string) []string {
	out := make([]string, len(in))
	for i, v := range in {
		out[i] = strings.ToLower(v)
	}
	return out
}

func (s *Server) meta(w http.ResponseWriter, r *http.Request, tok string, _ *Fault) {
	body := map[string]any{"verifiable_password_authentication": false}
	if rootOf(r).ghes {
		body["installed_version"] = s.opts.GHESVersion
	}
	s.writeJSON(w, r, tok, http.StatusOK, body)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func quietLog() *log.Logger { return log.New(io.Discard, "", 0) }

// recorder keeps a copy of an answer for Options.Observe.
type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(code int) { r.status = code; r.ResponseWriter.WriteHeader(code) }
func (r *recorder) Write(b []byte) (int, error) {
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

// user answers GET /user: the token's user; an installation token gets
// 403, as on GitHub.
func (s *Server) user(w http.ResponseWriter, r *http.Request, tok string, _ *Fault) {
	s.mu.Lock()
	info := s.tokens[tok]
	s.mu.Unlock()
	if info.repos != nil {
		writeError(w, http.StatusForbidden, "Resource not accessible by integration", docsBase+"/users/users#get-the-authenticated-user")
		return
	}
	s.writeJSON(w, r, tok, http.StatusOK, userJSON(rootOf(r), info.login))
}
