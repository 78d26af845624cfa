package ghsim

import "net/http"

// getRepo answers GET /repos/{owner}/{repo} with the full repository.
// Kargo's GitHub App credentials provider reads it right after minting an
// installation token, to see the token work before handing it out.
func (s *Server) getRepo(w http.ResponseWriter, r *http.Request, tok string, _ *Fault) {
	repo := s.Repo(r.PathValue("owner"), r.PathValue("repo"))
	if repo == nil {
		writeError(w, http.StatusNotFound, "Not Found", docsBase+"/repos/repos#get-a-repository")
		return
	}
	body := fullRepoJSON(rootOf(r), repo, s.now())
	body["network_count"], body["subscribers_count"], body["has_discussions"] = 0, 0, false
	s.writeJSON(w, r, tok, http.StatusOK, body)
}
