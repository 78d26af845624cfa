package ghsim

import (
	"fmt"
	"net/http"
	"strings"
)

// The REST API versions the simulator knows. A request names one in
// X-GitHub-Api-Version; without the header GitHub takes the oldest.
const (
	APIVersion2022 = "2022-11-28"
	APIVersion2026 = "2026-03-10"
)

// servedVersions is Options.APIVersions, or by default what the host the
// Answer imitates serves: GHES 3.20 and older only 2022-11-28, github.com
// and GHES 3.21 both.
func (o Options) servedVersions() []string {
	switch {
	case len(o.APIVersions) > 0:
		return o.APIVersions
	case o.Answer == AnswerGHES320:
		return []string{APIVersion2022}
	}
	return []string{APIVersion2022, APIVersion2026}
}

// apiVersion is the version a request asks for, and whether the host serves
// it; a refused version is answered here, as GitHub does, with 400 before
// anything else happens (nothing is acted on).
func (s *Server) apiVersion(w http.ResponseWriter, r *http.Request) (string, bool) {
	served := s.opts.servedVersions()
	v := r.Header.Get("X-GitHub-Api-Version")
	if v == "" {
		v = served[0]
	}
	if contains(served, v) {
		return v, true
	}
	writeError(w, http.StatusBadRequest,
		fmt.Sprintf("Unsupported 'X-GitHub-Api-Version' header: %s. Supported versions are: %s", v, strings.Join(served, ", ")),
		"https://docs.github.com/rest/about-the-rest-api/api-versions")
	return v, false
}

type versionKey struct{}

// versionOf is the API version a routed request was answered under.
func versionOf(r *http.Request) string {
	v, _ := r.Context().Value(versionKey{}).(string)
	return v
}
