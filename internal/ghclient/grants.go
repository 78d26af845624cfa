package ghclient

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/go-github/v90/github"

	"github.com/kargo-gha/kargo-gha/internal/bounded"
)

// grants keeps the permissions the latest token exchange of each App
// installation answered with: what a dry run reports of an App's
// credentials, without a request of its own.
type grants struct {
	m bounded.Map[string, map[string]string]
}

const (
	maxGrants = 1024
	// grantAge outlives the installation token (an hour) it came with.
	grantAge = 2 * time.Hour
)

func (g *grants) record(key string, p *github.InstallationPermissions) {
	if p == nil {
		return
	}
	b, err := json.Marshal(p)
	if err != nil {
		return
	}
	var m map[string]string
	if json.Unmarshal(b, &m) != nil {
		return
	}
	g.m.Put(key, m, maxGrants, grantAge)
}

// IsApp reports whether the client authenticates as a GitHub App
// installation.
func (c *Client) IsApp() bool { return c.appKey != "" }

// InstallationPermissions are the permissions ("actions": "write", …) the
// App installation's token was granted, as the token exchange answered;
// known is false for a token that is not an App's or before any exchange.
// It mints a token first when none is held (the exchange is the answer).
func (c *Client) InstallationPermissions(ctx context.Context) (perms map[string]string, known bool, err error) {
	if c.appKey == "" {
		return nil, false, nil
	}
	if perms, known = c.grants.m.Get(c.appKey, grantAge); known {
		return perms, true, nil
	}
	if _, err := c.Tokens.Token(ctx); err != nil {
		return nil, false, err
	}
	perms, known = c.grants.m.Get(c.appKey, grantAge)
	return perms, known, nil
}
