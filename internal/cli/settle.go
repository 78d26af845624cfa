package cli

import (
	"fmt"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/config"
	"github.com/kargo-gha/kargo-gha/internal/failure"
)

// checkSettle refuses, before anything is sent, a --settle longer than the
// time the dispatch looks for its run (timeout). A run found by listing is
// taken only after the settle, and the dispatch is given its settle
// whatever the timeout: --settle 2h kept the command running for two hours
// after --timeout 5.
func (o *DispatchOptions) checkSettle(cfg map[string]any) error {
	if o.Settle <= 0 {
		return nil
	}
	timeout, from := config.DefaultRunTimeout, "the default --timeout"
	if n, ok := config.WholeNumber(cfg["timeout"]); ok && n > 0 {
		timeout, from = time.Duration(n)*time.Second, "--timeout"
		if o.Timeout == 0 {
			from = "timeout in the configuration"
		}
	}
	if o.Settle > timeout {
		return failure.Final(fmt.Errorf("--settle %s is longer than %s (%s), the time the dispatch looks for its run: give a shorter --settle, or a longer --timeout (at most %s); nothing was dispatched",
			shortDuration(o.Settle), from, shortDuration(timeout), shortDuration(config.MaxRunTimeout)))
	}
	return nil
}
