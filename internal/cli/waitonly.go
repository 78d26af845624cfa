package cli

import (
	"fmt"

	"github.com/kargo-gha/kargo-gha/internal/failure"
)

// waitOnlyFlags are the dispatch flags that only the wait after the
// dispatch (--wait) reads.
var waitOnlyFlags = []string{"expected-conclusion", "poll-interval", "wait-timeout", "outputs-artifact"}

// refuseWaitFlagsWithoutWait refuses, before any request, a wait flag given
// without --wait. Ignored, it would dispatch anyway and leave the user
// without what the flag promised (the outputs, the conclusion checked).
func (o *DispatchOptions) refuseWaitFlagsWithoutWait() error {
	if o.AndWait || o.given == nil {
		return nil
	}
	for _, name := range waitOnlyFlags {
		if o.given(name) && o.DryRun {
			return failure.Final(fmt.Errorf("--%s is a setting of the wait after a dispatch, and --dry-run dispatches nothing: leave it out", name))
		}
		if o.given(name) {
			return failure.Final(fmt.Errorf("--%s is a setting of the wait after the dispatch: add --wait (or give it to kargo-gha wait for the dispatched run); nothing was dispatched", name))
		}
	}
	return nil
}
