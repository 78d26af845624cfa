package ghsim

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// signedURLLife is how long a download URL the API hands out stays valid:
// GitHub's log and artifact URLs expire after a minute.
const signedURLLife = time.Minute

// blobStore is the simulator's second HTTPS origin, standing for the blob
// storage GitHub redirects artifact and log downloads to: another host
// (localhost, where the API is 127.0.0.1) and another port. Its URLs are
// signed and expire; it needs no Authorization and records what it got.
type blobStore struct {
	url  string // https://localhost:PORT
	addr string // 127.0.0.1:PORT
	port string
	key  []byte
	srv  *http.Server
}

// blob is what a signed URL serves: a body streamed by write.
type blob struct {
	contentType string
	size        int64 // -1 when unknown (streamed)
	write       func(w io.Writer) error
}

// startBlobStore listens on a second port with the API's certificate.
func (s *Server) startBlobStore(cert tls.Certificate) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	b := &blobStore{url: "https://localhost:" + port, addr: ln.Addr().String(), port: port, key: key}
	b.srv = &http.Server{Handler: http.HandlerFunc(s.serveBlob), ReadHeaderTimeout: 10 * time.Second, ErrorLog: quietLog()}
	tl := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12})
	s.blobs = b
	s.BlobURL = b.url
	go func() { _ = b.srv.Serve(tl) }()
	return nil
}

// dialBlob routes a dial for the blob store's port to it (DialContext
// sends every other address to the API).
func (s *Server) dialBlob(ctx context.Context, network, addr string) (net.Conn, bool, error) {
	if s.blobs == nil {
		return nil, false, nil
	}
	if _, port, err := net.SplitHostPort(addr); err != nil || port != s.blobs.port {
		return nil, false, nil
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, s.blobs.addr)
	return c, true, err
}

// signedURL is the blob store's URL for path, valid for signedURLLife.
func (s *Server) signedURL(path string) string {
	exp := strconv.FormatInt(s.now().Add(signedURLLife).Unix(), 10)
	return s.blobs.url + path + "?se=" + exp + "&sig=" + s.blobs.sign(path, exp)
}

func (b *blobStore) sign(path, exp string) string {
	m := hmac.New(sha256.New, b.key)
	fmt.Fprintf(m, "%s\n%s", path, exp)
	return hex.EncodeToString(m.Sum(nil))
}

// serveBlob answers the blob store's GETs: 403 for a bad or expired
// signature (as Azure answers an expired SAS), 404 for what is gone.
func (s *Server) serveBlob(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	if s.opts.Observe != nil {
		defer func() {
			s.opts.Observe(Exchange{Route: "blob", Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Status: rec.status})
		}()
	}
	s.mu.Lock()
	s.stats.BlobRequests++
	s.mu.Unlock()
	q := r.URL.Query()
	exp, err := strconv.ParseInt(q.Get("se"), 10, 64)
	want := s.blobs.sign(r.URL.Path, q.Get("se"))
	switch {
	case r.Method != http.MethodGet:
		http.Error(rec, "method not allowed", http.StatusMethodNotAllowed)
		return
	case err != nil || !hmac.Equal([]byte(want), []byte(q.Get("sig"))):
		blobError(rec, http.StatusForbidden, "AuthenticationFailed", "Signature did not match.")
		return
	case s.now().After(time.Unix(exp, 0)):
		blobError(rec, http.StatusForbidden, "AuthenticationFailed", "Signed expiry time has passed.")
		return
	}
	s.mu.Lock()
	b, ok := s.blobFor(r.URL.Path)
	s.mu.Unlock()
	if !ok {
		blobError(rec, http.StatusNotFound, "BlobNotFound", "The specified blob does not exist.")
		return
	}
	rec.Header().Set("Content-Type", b.contentType)
	if b.size >= 0 {
		rec.Header().Set("Content-Length", strconv.FormatInt(b.size, 10))
	}
	rec.WriteHeader(http.StatusOK)
	_ = b.write(rec)
}

func blobError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("X-Ms-Error-Code", code)
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, msg)
}

// redirectToBlob answers an API download request with GitHub's 302 to a
// signed blob URL.
func (s *Server) redirectToBlob(w http.ResponseWriter, path string) {
	w.Header().Set("Location", s.signedURL(path))
	w.WriteHeader(http.StatusFound)
}

// blobPath parses /artifacts/{id} and /logs/{id}, the blob store's paths.
func blobPath(p string) (kind string, id int64, ok bool) {
	u, err := url.Parse(p)
	if err != nil {
		return "", 0, false
	}
	for _, k := range []string{"/artifacts/", "/logs/"} {
		if len(u.Path) > len(k) && u.Path[:len(k)] == k {
			n, err := strconv.ParseInt(u.Path[len(k):], 10, 64)
			return k[1 : len(k)-1], n, err == nil
		}
	}
	return "", 0, false
}

// statusRecorder keeps only the status: a blob can be gigabytes.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) { r.status = code; r.ResponseWriter.WriteHeader(code) }
