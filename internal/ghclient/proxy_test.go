package ghclient

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kargo-gha/kargo-gha/internal/credentials"
	"github.com/kargo-gha/kargo-gha/internal/repourl"
)

const (
	proxyUser     = "proxyuser"
	proxyPassword = "S3cretPassw0rd"
)

// closedAddr is an address on which nothing listens.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// echoingProxy answers every CONNECT 407 with a status line that repeats
// the credentials it was sent, decoded, as a careless proxy might.
func echoingProxy(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			auth := ""
			r := bufio.NewReader(conn)
			for {
				line, err := r.ReadString('\n')
				if err != nil || line == "\r\n" {
					break
				}
				if v, ok := strings.CutPrefix(line, "Proxy-Authorization: "); ok {
					auth = strings.TrimSpace(v)
				}
			}
			decoded, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(auth, "Basic "))
			fmt.Fprintf(conn, "HTTP/1.1 407 bad %s (%s)\r\nContent-Length: 0\r\n\r\n", auth, decoded)
			conn.Close()
		}
	}()
	return ln.Addr().String()
}

// Whatever happens at the proxy, no error text shows its user or password.
func TestProxyCredentialsNeverShow(t *testing.T) {
	userInfo := url.UserPassword(proxyUser, proxyPassword).String() + "@"
	tests := []struct {
		name    string
		proxy   func(*http.Request) (*url.URL, error)
		notSent bool
	}{
		{"proxy refuses the connection", http.ProxyURL(&url.URL{Scheme: "http", User: url.UserPassword(proxyUser, proxyPassword), Host: closedAddr(t)}), true},
		{"proxy echoes the credentials", http.ProxyURL(&url.URL{Scheme: "http", User: url.UserPassword(proxyUser, proxyPassword), Host: echoingProxy(t)}), false},
		// What http.ProxyFromEnvironment answers for such an HTTPS_PROXY.
		{"proxy address cannot be parsed", func(*http.Request) (*url.URL, error) {
			raw := "http://" + userInfo + "[::1"
			_, err := url.Parse(raw)
			return nil, fmt.Errorf("invalid proxy address %q: %v", raw, err)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo, err := repourl.Parse("https://127.0.0.1:1/o/r", repourl.Options{})
			if err != nil {
				t.Fatal(err)
			}
			c, err := (&Pool{Proxy: tt.proxy}).Client(repo, credentials.Credentials{Token: secret, Source: "test"}, false)
			if err != nil {
				t.Fatal(err)
			}
			var wrote atomic.Bool
			_, _, err = c.Actions.CreateWorkflowDispatchEventByFileName(WithSentFlag(context.Background(), &wrote), "o", "r", "d.yml", githubDispatch())
			if err == nil {
				t.Fatal("no error")
			}
			for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err), Describe(err), Classify(err, "dispatching", Hints{}).Error()} {
				if strings.Contains(text, proxyUser) || strings.Contains(text, proxyPassword) {
					t.Errorf("%q shows the proxy's credentials", text)
				}
			}
			if NotSent(err) != tt.notSent || wrote.Load() {
				t.Errorf("NotSent %t, sent flag %t, for %v", NotSent(err), wrote.Load(), err)
			}
		})
	}
}
