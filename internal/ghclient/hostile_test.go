package ghclient

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-github/v90/github"

	"github.com/kargo-gha/kargo-gha/internal/credentials"
	"github.com/kargo-gha/kargo-gha/internal/docblock"
	"github.com/kargo-gha/kargo-gha/internal/repourl"
)

// One named case per address of the table, in every form it can hide in.
func TestRefusedAddressesInEveryForm(t *testing.T) {
	refused := map[string]string{
		"AWS/GCP/Azure metadata":        "169.254.169.254",
		"link-local":                    "169.254.1.1",
		"IPv4-mapped metadata":          "::ffff:169.254.169.254",
		"NAT64 metadata":                "64:ff9b::a9fe:a9fe",
		"local-use NAT64 metadata":      "64:ff9b:1::a9fe:a9fe",
		"Azure wire server":             "168.63.129.16",
		"IPv4-mapped Azure wire server": "::ffff:168.63.129.16",
		"Oracle metadata":               "192.0.0.192",
		"NAT64 Oracle metadata":         "64:ff9b::c000:c0",
		"Alibaba metadata":              "100.100.100.200",
		"AWS IPv6 metadata":             "fd00:ec2::254",
		"IPv6 link-local":               "fe80::1",
	}
	for name, addr := range refused {
		if refusedAddress(netip.MustParseAddr(addr)) == "" {
			t.Errorf("%s (%s) is not refused", name, addr)
		}
	}
	for _, addr := range []string{"140.82.112.6", "127.0.0.1", "::1", "10.0.0.1", "64:ff9b::8c52:7006", "2606:50c0:8000::154"} {
		if why := refusedAddress(netip.MustParseAddr(addr)); why != "" {
			t.Errorf("%s refused: %s", addr, why)
		}
	}
}

// Through a proxy the dialer sees only the proxy: the destination is
// checked first, and the proxy never hears of a refused one.
func TestProxyNeverSeesARefusedDestination(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var connects atomic.Int32
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			line, _ := bufio.NewReader(conn).ReadString('\n')
			if strings.HasPrefix(line, "CONNECT") {
				connects.Add(1)
			}
			conn.Close()
		}
	}()
	proxyURL, _ := url.Parse("http://" + ln.Addr().String())
	pool := &Pool{Proxy: http.ProxyURL(proxyURL)}
	for _, host := range []string{"169.254.169.254", "[64:ff9b::a9fe:a9fe]", "168.63.129.16"} {
		repo, err := repourl.Parse("https://"+host+"/o/r", repourl.Options{})
		if err != nil {
			t.Fatal(err)
		}
		c, err := pool.Client(repo, credentials.Credentials{Token: secret, Source: "test"}, false)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = c.Actions.GetWorkflowRunByID(context.Background(), "o", "r", 1)
		var refused *RefusedAddressError
		if err == nil || !strings.Contains(err.Error(), "refusing to connect") || !errors.As(err, &refused) {
			t.Errorf("%s through a proxy: %v", host, err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if n := connects.Load(); n != 0 {
		t.Fatalf("the proxy got %d CONNECTs to refused destinations", n)
	}
}

// An Enterprise Server at https://host answering 301/307 to http://host:
// the token never travels in clear text, and a POST is never sent again.
func TestRedirectsThatLeaveTheOriginAreRefused(t *testing.T) {
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	var reached atomic.Int32
	go func() {
		for {
			conn, err := plain.Accept()
			if err != nil {
				return
			}
			reached.Add(1)
			conn.Close()
		}
	}()
	_, plainPort, _ := net.SplitHostPort(plain.Addr().String())
	for _, code := range []int{http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		var posts atomic.Int32
		_, c := apiServer(t, func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost {
				posts.Add(1)
			}
			http.Redirect(w, r, "http://127.0.0.1:"+plainPort+r.URL.Path, code)
		})
		_, _, err := c.Actions.GetWorkflowRunByID(context.Background(), "o", "r", 1)
		if err == nil || !strings.Contains(err.Error(), "another origin") {
			t.Errorf("%d on a read: %v", code, err)
		}
		_, _, err = c.Actions.CreateWorkflowDispatchEventByFileName(context.Background(), "o", "r", "d.yml", github.CreateWorkflowDispatchEventRequest{Ref: "main"})
		if err == nil || posts.Load() != 1 {
			t.Errorf("%d on the dispatch: %v, %d POSTs", code, err, posts.Load())
		}
	}
	// The same host on another scheme and port counts as another origin.
	if n := reached.Load(); n != 0 {
		t.Fatalf("the plain-text listener was reached %d times", n)
	}
}

// Text from the server is cleaned before it is shown: no escapes, no
// control characters, no token echoed back.
func TestServerTextIsMadeSafe(t *testing.T) {
	_, c := apiServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = w.Write([]byte(`{"message":"bad \u001b[31mrequest\u001b[0m\nAuthorization: ` + r.Header.Get("Authorization") + `","documentation_url":"https://docs.github.com"}`))
	})
	_, _, err := c.Actions.CreateWorkflowDispatchEventByFileName(context.Background(), "o", "r", "d.yml", github.CreateWorkflowDispatchEventRequest{Ref: "main"})
	msg := Classify(err, "dispatching", Hints{}).Error()
	if strings.Contains(msg, secret) || strings.ContainsAny(msg, "\x1b\n") || !strings.Contains(msg, "bad request") {
		t.Fatalf("message %q", msg)
	}
	if d := Describe(err); strings.Contains(d, secret) || strings.ContainsAny(d, "\x1b\n") {
		t.Fatalf("description %q", d)
	}
}

var updateDocs = flag.Bool("update-docs", false, "rewrite the address table in docs/reliability.md")

// The docs list the refused addresses from the one table in the code.
func TestRefusedAddressesDocument(t *testing.T) {
	var b strings.Builder
	b.WriteString("| prefix | what |\n|---|---|\n")
	for _, r := range RefusedAddresses {
		fmt.Fprintf(&b, "| `%s` | %s |\n", r.Prefix, r.What)
	}
	if err := docblock.Sync("../../docs/reliability.md", "refused-addresses", b.String(), *updateDocs); err != nil {
		t.Fatal(err)
	}
}
