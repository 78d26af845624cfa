package repourl

import "testing"

// FuzzParse: Parse never panics, and what it accepts is stable: the
// canonical web URL parses back to the same repository and API.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"https://github.com/o/r", "git@ghe.example.com:team/svc.git", "ssh://git@h:22/o/r", "https://h:8443/o/r.git/", "http://h/o/r"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s, Options{AllowHTTP: true})
		if err != nil {
			return
		}
		if r.Owner == "" || r.Name == "" || r.APIBaseURL == "" || r.APIBaseURL[len(r.APIBaseURL)-1] != '/' {
			t.Fatalf("Parse(%q) = %+v", s, r)
		}
		again, err := Parse(r.WebURL(), Options{AllowHTTP: true})
		if err != nil || again.FullName() != r.FullName() || again.APIBaseURL != r.APIBaseURL {
			t.Fatalf("Parse(%q) = %+v, but its web URL %q gives %+v, %v", s, r, r.WebURL(), again, err)
		}
	})
}
