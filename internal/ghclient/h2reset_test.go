package ghclient

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kargo-gha/kargo-gha/internal/credentials"
	"github.com/kargo-gha/kargo-gha/internal/repourl"
)

// The HTTP/2 frames and codes the reset server speaks (RFC 9113). It is
// written out here rather than taken from golang.org/x/net/http2 so the
// module needs no dependency for one test.
const (
	frameData         = 0x0
	frameHeaders      = 0x1
	frameRSTStream    = 0x3
	frameSettings     = 0x4
	frameGoAway       = 0x7
	flagEndStream     = 0x1
	flagAck           = 0x1
	flagEndHeaders    = 0x4
	codeNoError       = 0x0
	codeProtocolError = 0x1
	codeRefusedStream = 0x7
	// hpackStatus204 is ":status: 204" from HPACK's static table (index 9).
	hpackStatus204 = 0x89
)

// resetMode is how the server breaks the first request it receives in full.
type resetMode struct {
	name string
	// frame is the frame type sent on the request's stream: RST_STREAM with
	// code, or GOAWAY with last-stream-id 0 (the server says it processed
	// nothing).
	frame byte
	code  uint32
}

var resetModes = []resetMode{
	{"RST_STREAM PROTOCOL_ERROR", frameRSTStream, codeProtocolError},
	{"RST_STREAM REFUSED_STREAM", frameRSTStream, codeRefusedStream},
	{"GOAWAY last-stream-id 0", frameGoAway, codeNoError},
}

// h2ResetServer is an HTTP/2 server over TLS that reads each request in
// full (headers and body to END_STREAM), breaks the first one with its
// mode, and answers every later one 204. Requests counts what it received.
type h2ResetServer struct {
	mode     resetMode
	ln       net.Listener
	cert     *x509.Certificate
	requests atomic.Int32
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
}

func newH2ResetServer(t *testing.T, mode resetMode) *h2ResetServer {
	t.Helper()
	certPEM, cert := selfSignedCert(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{certPEM}, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	s := &h2ResetServer{mode: mode, ln: ln, cert: cert}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.close)
	return s
}

// close stops the server and the connections a client still holds open.
func (s *h2ResetServer) close() {
	_ = s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *h2ResetServer) accept() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns = append(s.conns, conn)
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer conn.Close()
			s.serve(conn)
		}()
	}
}

func (s *h2ResetServer) serve(conn net.Conn) {
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	preface := make([]byte, len("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
	if _, err := io.ReadFull(conn, preface); err != nil {
		return
	}
	writeFrame(conn, frameSettings, 0, 0, nil)
	for {
		typ, flags, stream, payload, err := readFrame(conn)
		if err != nil {
			return
		}
		switch {
		case typ == frameSettings && flags&flagAck == 0:
			writeFrame(conn, frameSettings, flagAck, 0, nil)
		case (typ == frameHeaders || typ == frameData) && flags&flagEndStream != 0:
			s.received(conn, stream)
		}
		_ = payload
	}
}

// received answers a request whose headers and body all arrived.
func (s *h2ResetServer) received(conn net.Conn, stream uint32) {
	if s.requests.Add(1) > 1 {
		writeFrame(conn, frameHeaders, flagEndHeaders|flagEndStream, stream, []byte{hpackStatus204})
		return
	}
	if s.mode.frame == frameGoAway {
		writeFrame(conn, frameGoAway, 0, 0, binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 0), s.mode.code))
		return
	}
	writeFrame(conn, frameRSTStream, 0, stream, binary.BigEndian.AppendUint32(nil, s.mode.code))
}

func writeFrame(w io.Writer, typ, flags byte, stream uint32, payload []byte) {
	n := len(payload)
	hdr := []byte{byte(n >> 16), byte(n >> 8), byte(n), typ, flags}
	hdr = binary.BigEndian.AppendUint32(hdr, stream&0x7fffffff)
	_, _ = w.Write(append(hdr, payload...))
}

func readFrame(r io.Reader) (typ, flags byte, stream uint32, payload []byte, err error) {
	var hdr [9]byte
	if _, err = io.ReadFull(r, hdr[:]); err != nil {
		return
	}
	n := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
	payload = make([]byte, n)
	_, err = io.ReadFull(r, payload)
	return hdr[3], hdr[4], binary.BigEndian.Uint32(hdr[5:]) & 0x7fffffff, payload, err
}

func selfSignedCert(t *testing.T) (tls.Certificate, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "reset server"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, cert
}

func (s *h2ResetServer) roots() *x509.CertPool {
	roots := x509.NewCertPool()
	roots.AddCert(s.cert)
	return roots
}

// The reset server does make Go's HTTP/2 client send a request again when
// the request can be rewound (GetBody set, as go-github sets it): without
// this, the test below would prove nothing.
func TestH2ResetServerMakesGoResend(t *testing.T) {
	for _, mode := range resetModes {
		t.Run(mode.name, func(t *testing.T) {
			s := newH2ResetServer(t, mode)
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.roots()}, ForceAttemptHTTP2: true}
			defer tr.CloseIdleConnections()
			req, _ := http.NewRequest(http.MethodPost, "https://"+s.ln.Addr().String()+"/x", bytes.NewReader([]byte(`{"ref":"main"}`)))
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatalf("bare transport: %v", err)
			}
			resp.Body.Close()
			if n := s.requests.Load(); n != 2 {
				t.Fatalf("the server received %d requests from a bare transport; want 2 (Go's own resend)", n)
			}
		})
	}
}

// A dispatch broken by the server after it arrived in full is sent once,
// and the error says it may have been sent.
func TestDispatchIsSentOnceWhenHTTP2ResetsIt(t *testing.T) {
	for _, mode := range resetModes {
		t.Run(mode.name, func(t *testing.T) {
			s := newH2ResetServer(t, mode)
			c := resetServerClient(t, s)
			var wrote atomic.Bool
			ctx, cancel := context.WithTimeout(WithSentFlag(context.Background(), &wrote), 10*time.Second)
			defer cancel()
			_, _, err := c.Actions.CreateWorkflowDispatchEventByFileName(ctx, "o", "r", "d.yml", githubDispatch())
			if n := s.requests.Load(); n != 1 {
				t.Fatalf("the server received the dispatch %d times; want 1 (err %v)", n, err)
			}
			if err == nil || NotSent(err) || !wrote.Load() {
				t.Fatalf("err %v, NotSent %t, sent flag %t: want an error that may have been sent", err, NotSent(err), wrote.Load())
			}
			if d := Describe(err); strings.Contains(d, "GetBody") || !strings.Contains(d, "not sent again") {
				t.Fatalf("description %q: want what happened, not Go's advice", d)
			}
		})
	}
}

// A write without a body (nothing to rewind) is not sent twice either.
func TestBodilessWriteIsSentOnceWhenHTTP2ResetsIt(t *testing.T) {
	for _, mode := range resetModes {
		t.Run(mode.name, func(t *testing.T) {
			s := newH2ResetServer(t, mode)
			c := resetServerClient(t, s)
			req, _ := http.NewRequest(http.MethodPost, "https://"+s.ln.Addr().String()+"/api/v3/repos/o/r/actions/runs/1/cancel", nil)
			resp, err := c.Client.Client().Do(req)
			if err == nil {
				resp.Body.Close()
			}
			if n := s.requests.Load(); n != 1 || err == nil {
				t.Fatalf("the server received the POST %d times (err %v); want once and an error", n, err)
			}
		})
	}
}

func resetServerClient(t *testing.T, s *h2ResetServer) *Client {
	t.Helper()
	repo, err := repourl.Parse("https://"+s.ln.Addr().String()+"/o/r", repourl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pool := &Pool{RootCAs: s.roots()}
	t.Cleanup(pool.CloseIdleConnections)
	c, err := pool.Client(repo, credentials.Credentials{Token: secret, Source: "test"}, false)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// writtenThenDialFails is a transport that writes the request's headers,
// loses the connection and then fails to dial a new one: its error looks
// like "never sent", but the request left.
type writtenThenDialFails struct{ calls atomic.Int32 }

func (t *writtenThenDialFails) RoundTrip(req *http.Request) (*http.Response, error) {
	t.calls.Add(1)
	if trace := httptrace.ContextClientTrace(req.Context()); trace != nil && trace.WroteHeaders != nil {
		trace.WroteHeaders()
	}
	return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
}

func TestRetryNeverRepeatsAWrittenPost(t *testing.T) {
	base := &writtenThenDialFails{}
	req, _ := http.NewRequest(http.MethodPost, "https://api.example.test/repos/o/r/actions/workflows/d.yml/dispatches", strings.NewReader(`{"ref":"main"}`))
	_, err := retryTransport{base: base}.RoundTrip(req)
	if err == nil || base.calls.Load() != 1 {
		t.Fatalf("%d sends (err %v); want 1", base.calls.Load(), err)
	}
}
