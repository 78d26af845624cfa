package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const (
	// apiServerReadyWithin: a cold kube-apiserver on a busy 2-core machine
	// takes tens of seconds to install its built-in APIs and RBAC roles.
	apiServerReadyWithin = 3 * time.Minute
	// etcdReadyWithin: etcd answers /health within a second or two.
	etcdReadyWithin = 30 * time.Second
)

// cluster is an etcd and a kube-apiserver on loopback, and what a client
// needs to reach the API server as a member of system:masters.
type cluster struct {
	dir        string // certificates, kubeconfig, etcd's data
	logs       string // every process's output
	url        string // https://127.0.0.1:PORT
	kubeconfig string // for the controller and the test's client
	caPEM      []byte
	clientCert tls.Certificate
}

// startCluster starts etcd and kube-apiserver for the whole test binary;
// both are killed when the test process ends (Pdeathsig) or stop is called.
func startCluster(etcdBin, apiServerBin, dir, logs string) (*cluster, func(), error) {
	c := &cluster{dir: dir, logs: logs}
	pki, err := newPKI(dir)
	if err != nil {
		return nil, nil, err
	}
	c.caPEM, c.clientCert = pki.caPEM, pki.client
	var procs []*proc
	stop := func() {
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].kill()
		}
	}
	etcdURL, peerURL := "http://127.0.0.1:"+freePort(), "http://127.0.0.1:"+freePort()
	etcd, err := startProcess(filepath.Join(logs, "etcd.log"), nil, etcdBin,
		"--name=e2e", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=e2e="+peerURL, "--log-level=warn")
	if err != nil {
		return nil, nil, err
	}
	procs = append(procs, etcd)
	if err := poll(etcdReadyWithin, func() error { return httpOK(http.DefaultClient, etcdURL+"/health") }); err != nil {
		stop()
		return nil, nil, fmt.Errorf("etcd never became healthy (see %s/etcd.log): %w", logs, err)
	}
	port := freePort()
	c.url = "https://127.0.0.1:" + port
	apiServer, err := startProcess(filepath.Join(logs, "kube-apiserver.log"), nil, apiServerBin,
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+port,
		"--cert-dir="+filepath.Join(dir, "apiserver-certs"),
		"--tls-cert-file="+pki.serverCert, "--tls-private-key-file="+pki.serverKey,
		"--client-ca-file="+pki.caFile,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+pki.saKey, "--service-account-signing-key-file="+pki.saKey,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--authorization-mode=RBAC",
		// No Endpoints for the kubernetes Service: Kubernetes refuses a
		// loopback address there, and nothing here runs in a pod.
		"--endpoint-reconciler-type=none",
		"--profiling=false")
	if err != nil {
		stop()
		return nil, nil, err
	}
	procs = append(procs, apiServer)
	client, err := c.httpClient()
	if err != nil {
		stop()
		return nil, nil, err
	}
	if err := poll(apiServerReadyWithin, func() error { return httpOK(client, c.url+"/readyz") }); err != nil {
		stop()
		return nil, nil, fmt.Errorf("kube-apiserver never became ready (see %s/kube-apiserver.log): %w", logs, err)
	}
	c.kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(c.kubeconfig, []byte(kubeconfig(c.url, pki)), 0o600); err != nil {
		stop()
		return nil, nil, err
	}
	return c, stop, nil
}

func (c *cluster) httpClient() (*http.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(c.caPEM) {
		return nil, fmt.Errorf("the cluster's CA does not parse")
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, Certificates: []tls.Certificate{c.clientCert}, MinVersion: tls.VersionTLS12,
	}}}, nil
}

// pki is the cluster's certificates: one CA signs the API server's serving
// certificate and the client certificate (system:masters) that the test
// and the controller present.
type pki struct {
	caFile, serverCert, serverKey, clientCertFile, clientKey, saKey string
	caPEM                                                           []byte
	client                                                          tls.Certificate
}

func newPKI(dir string) (*pki, error) {
	p := &pki{}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kargo-e2e-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, _ := x509.ParseCertificate(caDER)
	p.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	issue := func(name string, tmpl *x509.Certificate) (certFile, keyFile string, err error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return "", "", err
		}
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(24*time.Hour)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return "", "", err
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return "", "", err
		}
		certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
		if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
			return "", "", err
		}
		return certFile, keyFile, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	}
	if p.serverCert, p.serverKey, err = issue("apiserver", &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.1")}, DNSNames: []string{"localhost", "kubernetes.default.svc"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return nil, err
	}
	// Kubernetes takes the organisation as the group: system:masters may do
	// anything, as a cluster admin's kubeconfig can.
	if p.clientCertFile, p.clientKey, err = issue("admin", &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "kargo-e2e-admin", Organization: []string{"system:masters"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return nil, err
	}
	if p.client, err = tls.LoadX509KeyPair(p.clientCertFile, p.clientKey); err != nil {
		return nil, err
	}
	// The service-account signing key (kube-apiserver requires one).
	if _, p.saKey, err = issue("service-account", &x509.Certificate{SerialNumber: big.NewInt(4), Subject: pkix.Name{CommonName: "service-accounts"}}); err != nil {
		return nil, err
	}
	p.caFile = filepath.Join(dir, "ca.crt")
	return p, os.WriteFile(p.caFile, p.caPEM, 0o600)
}

func kubeconfig(url string, p *pki) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: admin
  user:
    client-certificate: %s
    client-key: %s
contexts:
- name: e2e
  context: {cluster: e2e, user: admin}
current-context: e2e
`, url, p.caFile, p.clientCertFile, p.clientKey)
}

// proc is a started process; done closes once it has exited.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startProcess starts bin with its output appended to logFile. It dies
// with the test process (Pdeathsig), so a failed or interrupted run leaves
// no etcd, API server or controller behind.
func startProcess(logFile string, env []string, bin string, args ...string) (*proc, error) {
	out, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = out.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); _ = out.Close(); close(p.done) }()
	return p, nil
}

// kill sends SIGKILL, as Kubernetes does after a pod's grace period or on
// an OOM, and returns once the process is gone.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// freePort is a loopback port nobody listens on at the moment.
func freePort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

func httpOK(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s %s", url, resp.Status, strings.TrimSpace(body.String()))
	}
	return nil
}

// poll calls f every 200 ms until it returns nil or within has passed.
func poll(within time.Duration, f func() error) error {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// tail is the last n lines of a log file, for failure messages.
func tail(file string, n int) string {
	raw, err := os.ReadFile(file)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
