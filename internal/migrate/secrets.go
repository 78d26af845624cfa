package migrate

import (
	"fmt"
	"sort"
	"strings"
)

// secretIndex finds v1.8 Secrets by name, keeping every namespace's copy,
// so that a step can be told which namespaces do have the name it wants.
type secretIndex map[string][]Secret

func indexSecrets(secrets []Secret) secretIndex {
	idx := secretIndex{}
	for _, s := range secrets {
		idx[s.Name] = append(idx[s.Name], s)
	}
	return idx
}

// baseURL is the host a step's Secret gives, the Secrets it came from, or
// the reason (naming what was looked for and where) that nothing can be
// taken. A Stage's or PromotionTask's Secret is in its own namespace and
// nowhere else: another namespace's Secret of the same name may name
// another host, and a wrong host is worse than a step left alone.
func (idx secretIndex) baseURL(m manifest, name string, assumeGitHubCom bool) (string, []SecretRef, string) {
	all := idx[name]
	if len(all) == 0 {
		if assumeGitHubCom {
			return "", nil, ""
		}
		if name == "" {
			return "", nil, "it names no credentials Secret, so its host is unknown: add credentials.secretName, or use --github-com if it is on github.com"
		}
		return "", nil, fmt.Sprintf("its credentials Secret %q is in no namespace of --credentials-file, so its host is unknown (an Enterprise Server Secret has a baseURL): give the Secrets with --credentials-file, or --github-com if they are all for github.com", name)
	}
	if m.kind == "ClusterPromotionTask" {
		return clusterBaseURL(name, all)
	}
	if m.namespace == "" {
		return "", nil, fmt.Sprintf("its credentials Secret %q is looked up in the %s's namespace, and the manifest has no metadata.namespace (--credentials-file has %q in %s): add metadata.namespace, the project's namespace", name, m.kind, name, namespaces(all))
	}
	var here []Secret
	for _, s := range all {
		if s.Namespace == m.namespace {
			here = append(here, s)
		}
	}
	switch len(here) {
	case 0:
		return "", nil, fmt.Sprintf("its credentials Secret %q is not in namespace %s in --credentials-file (it has %q only in %s, which a step in %s cannot use): add the Secret of namespace %s", name, m.namespace, name, namespaces(all), m.namespace, m.namespace)
	case 1:
		return here[0].BaseURL, []SecretRef{here[0].SecretRef}, ""
	}
	return "", nil, fmt.Sprintf("its credentials Secret %s is in --credentials-file %d times (baseURLs %s): keep one", here[0].SecretRef, len(here), baseURLs(here))
}

// clusterBaseURL: a ClusterPromotionTask's steps run in the namespace of
// each project that uses it, so its Secret is every namespace's Secret of
// that name; the host is taken only when all of them agree on it.
func clusterBaseURL(name string, all []Secret) (string, []SecretRef, string) {
	refs := make([]SecretRef, len(all))
	for i, s := range all {
		if s.BaseURL != all[0].BaseURL {
			return "", nil, fmt.Sprintf("a ClusterPromotionTask runs in each project that uses it, and its credentials Secret %q names different hosts in different namespaces (%s): write repoURL by hand, or one PromotionTask per project", name, baseURLs(all))
		}
		refs[i] = s.SecretRef
	}
	return all[0].BaseURL, refs, ""
}

func namespaces(secrets []Secret) string {
	var ns []string
	for _, s := range secrets {
		ns = append(ns, s.Namespace)
	}
	sort.Strings(ns)
	return strings.Join(ns, ", ")
}

func baseURLs(secrets []Secret) string {
	var out []string
	for _, s := range secrets {
		base := s.BaseURL
		if base == "" {
			base = "github.com"
		}
		out = append(out, s.SecretRef.String()+": "+base)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
