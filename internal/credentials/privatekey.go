package credentials

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

// checkPrivateKey reports a GitHub App private key that cannot sign an App
// JWT (RS256), when the token source is made (before any request), saying where it came from (where: an environment variable,
// a file, a Secret's key) and what is wrong with it, never any of its
// content: a key pasted into the wrong variable is still a secret.
func checkPrivateKey(pemBytes []byte, where string) error {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return fmt.Errorf("the GitHub App private key from %s is not PEM text (it should begin -----BEGIN RSA PRIVATE KEY-----, as GitHub's download does)", where)
	}
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		_, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		var k any
		if k, err = x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
			if _, ok := k.(*rsa.PrivateKey); !ok {
				return fmt.Errorf("the GitHub App private key from %s is not an RSA key; GitHub Apps sign with RSA keys", where)
			}
		}
	case "ENCRYPTED PRIVATE KEY":
		return fmt.Errorf("the GitHub App private key from %s is encrypted; give it decrypted, as GitHub's download is", where)
	default:
		return fmt.Errorf("the GitHub App private key from %s is a PEM %q block, not a private key", where, block.Type)
	}
	if err != nil {
		return fmt.Errorf("the GitHub App private key from %s is a PEM %q block that does not parse (cut or altered?)", where, block.Type)
	}
	return nil
}
