package ghsim_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"testing"

	"github.com/kargo-gha/kargo-gha/internal/credentials"
	"github.com/kargo-gha/kargo-gha/internal/ghsim"
)

func testApp(t *testing.T, sim *ghsim.Server) credentials.Credentials {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	repo := sim.AddRepo("myorg", "my-app")
	_ = repo
	sim.AddApp(&ghsim.App{ID: 99, ClientID: "Iv23liSim", PublicKey: &key.PublicKey, Installations: map[int64][]string{5: {"myorg/my-app"}}})
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	return credentials.Credentials{App: &credentials.App{AppID: 99, InstallationID: 5, PrivateKeyPEM: pemKey}, Source: "test"}
}
