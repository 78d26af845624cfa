package main

import (
	"fmt"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// supportedArchs are the architectures the image is built for: the ones
// Kargo's own images (and so its custom-step pods) run on. Others are
// refused rather than built untested.
var supportedArchs = []string{"amd64", "arm64"}

// parseArchs reads -arch: a comma-separated list of architectures, or
// linux/ARCH platforms. The result is sorted, so the index lists its
// platforms in one order whatever order they were asked in.
func parseArchs(flagValue string) ([]v1.Platform, error) {
	var archs []string
	supported := strings.Join(supportedArchs, ", ")
	for _, entry := range strings.Split(flagValue, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		a := entry
		if os, arch, ok := strings.Cut(entry, "/"); ok {
			if os != "linux" {
				return nil, fmt.Errorf("-arch %q: the image is for linux only (supported: %s)", entry, supported)
			}
			a = arch
		}
		if !slices.Contains(supportedArchs, a) {
			return nil, fmt.Errorf("-arch %q: cannot build for this architecture (supported: %s)", entry, supported)
		}
		if slices.Contains(archs, a) {
			return nil, fmt.Errorf("-arch %q: named twice", entry)
		}
		archs = append(archs, a)
	}
	if len(archs) == 0 {
		return nil, fmt.Errorf("-arch is empty (supported: %s)", supported)
	}
	slices.Sort(archs)
	out := make([]v1.Platform, len(archs))
	for i, a := range archs {
		out[i] = v1.Platform{OS: "linux", Architecture: a}
	}
	return out, nil
}
