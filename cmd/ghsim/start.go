package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/kargo-gha/kargo-gha/internal/ghsim"
)

// simulator is a started ghsim and what a user needs to reach it.
type simulator struct {
	*ghsim.Server
	cfg      config
	repo     *ghsim.Repo
	workflow *ghsim.Workflow
	// CAFile and AppKeyFile are absolute, so the printed commands work
	// from any directory.
	CAFile, AppKeyFile string
}

// start runs the simulator with cfg's repository, workflow, token, App and
// faults, and writes the CA (and the App's key) to their files. The URL
// file is written last: whoever waits for it finds the simulator ready.
func start(cfg config, stderr io.Writer) (*simulator, error) {
	opts := ghsim.Options{Addr: cfg.Addr, Answer: cfg.Answer, RunDelay: cfg.RunDelay, QueuedFor: cfg.QueuedFor, RunFor: cfg.RunFor, ReadLag: cfg.ReadLag, APIVersions: cfg.APIVersions}
	if !cfg.Quiet {
		opts.Observe = requestLog(stderr)
	}
	srv, err := ghsim.New(opts)
	if err != nil {
		return nil, err
	}
	sim := &simulator{Server: srv, cfg: cfg}
	if err := sim.setUp(); err != nil {
		srv.Close()
		return nil, err
	}
	return sim, nil
}

func (sim *simulator) setUp() error {
	cfg := sim.cfg
	sim.repo = sim.AddRepo(cfg.Owner, cfg.Name)
	sim.workflow = sim.AddWorkflow(sim.repo, cfg.Workflow)
	sim.AddToken(cfg.Token, "octocat", false)
	for _, f := range cfg.Faults.injected() {
		sim.InjectFault(f)
	}
	var err error
	if sim.CAFile, err = writeFile(cfg.CAFile, sim.CACertPEM, 0o644); err != nil {
		return err
	}
	if cfg.AppKeyFile != "" {
		if sim.AppKeyFile, err = sim.addApp(); err != nil {
			return err
		}
	}
	if cfg.URLFile != "" {
		if _, err := writeFile(cfg.URLFile, []byte(sim.URL+"\n"), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// addApp creates the GitHub App, installed on the repository, with a new
// RSA key whose private half it writes to -app-key-file: what a user
// gives kargo-gha as GITHUB_APP_PRIVATE_KEY_FILE.
func (sim *simulator) addApp() (string, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", err
	}
	cfg := sim.cfg
	sim.AddApp(&ghsim.App{
		ID: cfg.AppID, ClientID: appClientID(cfg.AppID), PublicKey: &key.PublicKey,
		Installations: map[int64][]string{cfg.InstallationID: {cfg.Owner + "/" + cfg.Name}},
	})
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	// 0600: it is a private key, even a simulated one.
	return writeFile(cfg.AppKeyFile, pemKey, 0o600)
}

// writeFile writes data to path (replacing a file left by an earlier run,
// mode included) and returns the absolute path.
func writeFile(path string, data []byte, mode os.FileMode) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	_ = os.Remove(abs)
	if err := os.WriteFile(abs, data, mode); err != nil {
		return "", err
	}
	return abs, nil
}

// requestLog logs each request's method, path and status on w: what a user
// watching a trial wants to see (the token exchange, the dispatch, each
// poll, the injected faults). Headers and bodies are left out, so no
// credential is ever printed.
func requestLog(w io.Writer) func(ghsim.Exchange) {
	var mu sync.Mutex
	return func(e ghsim.Exchange) {
		mu.Lock()
		defer mu.Unlock()
		note := ""
		switch {
		case e.Route == "token" && e.Status == 201:
			note = "  (installation token minted for the App)"
		case e.Status == 0:
			note = "  (connection dropped)"
		}
		fmt.Fprintf(w, "ghsim: %s %s → %d%s\n", e.Method, e.Path, e.Status, note)
	}
}

// appClientID is the App's client ID (GitHub's preferred JWT issuer, for
// GITHUB_APP_CLIENT_ID); the App ID works as the issuer too.
func appClientID(appID int64) string { return fmt.Sprintf("Iv23liGhsim%d", appID) }
