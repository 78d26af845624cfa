package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

// migrate's lines on stderr (a step left alone, the summary) were plain
// text under --log-format json, and migrate without an argument was exit
// 1 without the help pointer, where every other usage error is 2.
func TestMigrateLogsAndUsage(t *testing.T) {
	code, _, errOut := runMigrateStdin(stageIn("team-a"), "--log-format", "json", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	for _, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("stderr line %q is not JSON: %v", line, err)
		}
	}
	if len(lines) < 2 || !strings.Contains(errOut, "cannot migrate gha-dispatch-workflow") || !strings.Contains(errOut, "1 file(s) read") {
		t.Fatalf("stderr %s: want the step left alone and the summary", errOut)
	}
	code, _, errOut = runMigrateCmd()
	if code != ExitUsage || !strings.Contains(errOut, "see kargo-gha migrate --help") {
		t.Fatalf("no argument: exit %d: %s", code, errOut)
	}
}
