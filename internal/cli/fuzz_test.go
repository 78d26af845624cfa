package cli

import (
	"runtime"
	"testing"

	"github.com/kargo-gha/kargo-gha/internal/config"
	"github.com/kargo-gha/kargo-gha/internal/repourl"
)

// FuzzDecodeConfig: YAML or JSON configuration files, both formats, through
// the same path as --config: no panic, and only *config.Error for bad ones.
func FuzzDecodeConfig(f *testing.F) {
	for _, s := range []string{
		"repoURL: https://github.com/o/r\nworkflowFile: deploy.yml\nref: main\ninputs:\n  version: 1.10\n  big: 1000000\ntimeout: 120\n",
		"uses: gha-dispatch-workflow\nconfig:\n  owner: o\n  repo: r\n  credentials: {secretName: s}\n  workflowFile: d.yml\n  ref: main\n",
		"repoURL: https://github.com/o/r\nrunID: \"42\"\nexpectedConclusion: success\npollInterval: 30s\n",
		"a: &x {b: 1}\nc: *x\n", "inputs: {v: 0x1F, w: .inf, x: 1_000}\n",
	} {
		f.Add([]byte(s))
	}
	f.Add([]byte(aliasBomb(9)))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Against memory: no input may make the decoder allocate more than
		// a few times the size of the largest accepted configuration.
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		cfg, err := decodeConfig(data)
		runtime.ReadMemStats(&after)
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
			t.Fatalf("decoding %d bytes allocated %d MiB", len(data), alloc>>20)
		}
		if err != nil {
			return
		}
		if _, err := config.ParseDispatch(cfg, repourl.Options{}); err != nil {
			if _, ok := err.(*config.Error); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
		}
		_, _ = config.ParseWait(cfg, repourl.Options{})
	})
}
