package ghclient

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
)

// writeOnceTransport sits directly on the connection pool and hands it every
// request that may act on GitHub (anything but a read) in a form it cannot
// send twice. net/http and its HTTP/2 client resend a request on their own
// after a reset stream (RST_STREAM PROTOCOL_ERROR or REFUSED_STREAM), a
// GOAWAY, or a lost connection whenever they can rewind its body
// (Request.GetBody, which go-github sets) or it has none. For a dispatch
// that second send is a second workflow run, made below the layers that
// record whether the request left. Whether a write is repeated is decided
// only above, by retryTransport and the dispatcher.
type writeOnceTransport struct{ base http.RoundTripper }

func (t writeOnceTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if isRead(req.Method) {
		return t.base.RoundTrip(req)
	}
	once := req.Clone(req.Context())
	once.GetBody = nil
	if once.Body == nil || once.Body == http.NoBody {
		// Without a body the transports need nothing to rewind; an empty
		// body they have not seen before is one they cannot rewind. (Over
		// HTTP/1.1 it goes out as an empty chunked body; no request of this
		// project is a bodiless write.)
		once.Body = emptyBody{}
		once.ContentLength = 0
	}
	resp, err := t.base.RoundTrip(once)
	if err != nil {
		return nil, explainNotResent(err)
	}
	return resp, nil
}

// goCannotRetry matches the error of net/http's HTTP/2 client when it would
// have sent the request again but could not rewind it; its advice (define
// GetBody) is the opposite of what this project wants.
var goCannotRetry = regexp.MustCompile(`^http2: Transport: cannot retry err \[(.*)\] after Request\.Body was written; define Request\.GetBody to avoid this error$`)

// explainNotResent says what happened in that case instead.
func explainNotResent(err error) error {
	m := goCannotRetry.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	return fmt.Errorf("%s, after the request was sent; it is not sent again", m[1])
}

// isRead reports the methods that cannot act on GitHub, which the
// transports may resend as they see fit.
func isRead(method string) bool {
	return method == "" || method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

// emptyBody is a body of no bytes that net/http does not recognise as
// http.NoBody, and so treats as read once.
type emptyBody struct{}

func (emptyBody) Read([]byte) (int, error) { return 0, io.EOF }
func (emptyBody) Close() error             { return nil }
