package step_test

import (
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kargo-gha/kargo-gha/internal/cli"
)

// TestReadmeSynopsisNamesEveryFlag: the README's command-line synopsis
// names, for each command, exactly the flags the command has (flags every
// command takes, such as --verbose, are named once after it), so that a
// flag added to the command line is documented where users look.
func TestReadmeSynopsisNamesEveryFlag(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## Command line\n")
	if !ok {
		t.Fatal("README has no Command line section")
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	_, block, _ := strings.Cut(sec, "```\n")
	block, after, _ := strings.Cut(block, "```")
	synopsis := map[string]string{} // command → its synopsis lines
	cmd := ""
	for _, l := range strings.Split(block, "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "kargo-gha" {
			cmd = f[1]
		}
		synopsis[cmd] += l + "\n"
	}
	flagRef := regexp.MustCompile(`--[a-z][a-z-]*`)
	root := cli.NewRootCmd(cli.NewFactory("test"))
	global := docFlagNames(root.PersistentFlags())
	for _, name := range global {
		if !strings.Contains(after, "`--"+name) {
			t.Errorf("the flag every command takes, --%s, is not named after the synopsis", name)
		}
	}
	for _, c := range root.Commands() {
		if !slices.Contains([]string{"dispatch", "wait", "check", "migrate"}, c.Name()) {
			continue
		}
		want := docOwnFlags(c, global)
		got := flagRef.FindAllString(synopsis[c.Name()], -1)
		for i := range got {
			got[i] = strings.TrimPrefix(got[i], "--")
		}
		sort.Strings(got)
		got = slices.Compact(got)
		if !slices.Equal(got, want) {
			t.Errorf("README's synopsis of kargo-gha %s names %v; the command has %v", c.Name(), got, want)
		}
	}
}

func docFlagNames(fs *pflag.FlagSet) []string {
	var out []string
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name != "help" {
			out = append(out, f.Name)
		}
	})
	sort.Strings(out)
	return out
}

func docOwnFlags(c *cobra.Command, global []string) []string {
	var out []string
	for _, n := range docFlagNames(c.Flags()) {
		if !slices.Contains(global, n) {
			out = append(out, n)
		}
	}
	return out
}
