package ghclient

import (
	"context"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
)

type sentKey struct{}

// WithSentFlag returns a context whose next POST through a client of this
// package (other than an App token exchange) sets flag once any of its
// request headers has been written to a connection: from then on the server
// may have received it. A flag still false after a failure proves the
// request never left this process.
func WithSentFlag(ctx context.Context, flag *atomic.Bool) context.Context {
	return context.WithValue(ctx, sentKey{}, flag)
}

// sentTransport watches, for requests that carry a sent flag, whether the
// request started to leave. It sits below the auth and retry layers, so it
// sees the actual request, and it ignores the token exchange, which shares
// the caller's context.
type sentTransport struct{ base http.RoundTripper }

func (t sentTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	flag, ok := req.Context().Value(sentKey{}).(*atomic.Bool)
	if !ok || req.Method != http.MethodPost || tokenExchangePath.MatchString(req.URL.Path) {
		return t.base.RoundTrip(req)
	}
	mark := func() { flag.Store(true) }
	ctx := httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		WroteHeaderField: func(string, []string) { mark() },
		WroteHeaders:     mark,
	})
	return t.base.RoundTrip(req.WithContext(ctx))
}
