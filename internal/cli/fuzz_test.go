package cli

import (
	"runtime/metrics"
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
		before := allocatedBytes()
		cfg, err := decodeConfig(data)
		if alloc := allocatedBytes() - before; alloc > 64<<20 {
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

// allocatedBytes is the bytes allocated by the process so far, read from
// runtime/metrics: unlike runtime.ReadMemStats it does not stop the world.
// Stopping it twice per execution made the fuzzer's first seconds, when it
// minimizes each new input (thousands of executions), crawl: 31 executions
// in the first 3 s of a cold 10 s run, 10,000-16,000 with this. It may
// lag by what the Ps' caches hold, a few KiB against a bound of 64 MiB.
func allocatedBytes() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
