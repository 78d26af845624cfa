// Package credentials says how to authenticate to GitHub for a repository:
// a personal access token, or a GitHub App installation whose tokens are
// minted on demand and cached. It reads them from Kargo's Git-credential
// Secrets, from the deprecated v1.8 Secret, or from the environment.
package credentials

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
)

// Credentials authenticate to GitHub. Exactly one of Token and App is set.
// They print as "[redacted]": a Credentials value that ends up in a log line
// or panic never shows a secret.
type Credentials struct {
	// Token is a personal access token (classic or fine-grained) or an
	// installation token minted elsewhere (Kargo's credentials database does
	// that for GitHub Apps).
	Token string
	App   *App
	// Source says where the credentials came from, for messages ("Secret
	// kargo-demo/github-creds", "GITHUB_TOKEN").
	Source string
	// BaseURL and UploadURL come from a v1.8 Secret and point at a GitHub
	// Enterprise Server; empty means github.com.
	BaseURL, UploadURL string
}

// App identifies a GitHub App installation and holds its private key.
type App struct {
	// ClientID is preferred by GitHub as the JWT issuer; AppID is the older
	// numeric form. One of them is set.
	ClientID       string
	AppID          int64
	InstallationID int64
	PrivateKeyPEM  []byte
	// KeySource says where the private key came from, for messages (an
	// environment variable, a file, a Secret's key); never the key.
	KeySource string
}

// Issuer is the JWT "iss" claim: the client ID when known, else the App ID.
func (a *App) Issuer() string {
	if a.ClientID != "" {
		return a.ClientID
	}
	return strconv.FormatInt(a.AppID, 10)
}

// Fingerprint identifies credentials in caches without holding the secret
// itself as a key.
func (c Credentials) Fingerprint() string {
	h := sha256.New()
	if c.App != nil {
		fmt.Fprintf(h, "app\x00%s\x00%d\x00", c.App.Issuer(), c.App.InstallationID)
		h.Write(c.App.PrivateKeyPEM)
	} else {
		fmt.Fprintf(h, "token\x00%s", c.Token)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Kind names the credential kind for messages.
func (c Credentials) Kind() string {
	if c.App != nil {
		return "GitHub App (issuer " + c.App.Issuer() + ", installation " + strconv.FormatInt(c.App.InstallationID, 10) + ")"
	}
	return "token"
}

func (c Credentials) String() string {
	return "Credentials{" + c.Kind() + " from " + c.Source + ", [redacted]}"
}
func (c Credentials) GoString() string { return c.String() }
func (c Credentials) Format(f fmt.State, _ rune) {
	_, _ = f.Write([]byte(c.String()))
}

func (a App) String() string   { return "App{issuer " + a.Issuer() + ", [redacted]}" }
func (a App) GoString() string { return a.String() }
func (a App) Format(f fmt.State, _ rune) {
	_, _ = f.Write([]byte(a.String()))
}

// Validate reports what is missing, naming the field.
func (c Credentials) Validate() error {
	switch {
	case c.App == nil && c.Token == "":
		return fmt.Errorf("credentials from %s have neither a token nor GitHub App settings", c.Source)
	case c.App != nil && c.App.ClientID == "" && c.App.AppID <= 0:
		return fmt.Errorf("GitHub App credentials from %s need a client ID or an App ID", c.Source)
	case c.App != nil && c.App.InstallationID <= 0:
		return fmt.Errorf("GitHub App credentials from %s need an installation ID", c.Source)
	case c.App != nil && len(c.App.PrivateKeyPEM) == 0:
		return fmt.Errorf("GitHub App credentials from %s need a private key", c.Source)
	case c.App != nil && len(c.App.PrivateKeyPEM) > MaxPrivateKeyBytes:
		return tooLarge("the GitHub App private key from "+c.Source, MaxPrivateKeyBytes)
	}
	return nil
}
