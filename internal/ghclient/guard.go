package ghclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
)

// RefusedAddressError is returned when an API host is, or resolves to, an
// address no GitHub API lives at: the cloud metadata endpoints, which
// answer with credentials for whoever asks.
type RefusedAddressError struct {
	Host string
	IP   netip.Addr
	What string
}

func (e *RefusedAddressError) Error() string {
	return fmt.Sprintf("refusing to connect to %s: it resolves to %s, %s", e.Host, e.IP, e.What)
}

// RefusedAddresses is the one table of addresses the client never connects
// to, directly or through a proxy (docs/reliability.md lists it too). IPv4
// entries also match in their IPv4-mapped IPv6 form (::ffff:a.b.c.d) and in
// the NAT64 forms (64:ff9b::a.b.c.d, 64:ff9b:1::/48).
var RefusedAddresses = []struct {
	Prefix netip.Prefix
	What   string
}{
	{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address (AWS, GCP, Azure, OpenStack metadata at 169.254.169.254)"},
	{netip.MustParsePrefix("fe80::/10"), "an IPv6 link-local address"},
	{netip.MustParsePrefix("168.63.129.16/32"), "the Azure wire server"},
	{netip.MustParsePrefix("192.0.0.192/32"), "the Oracle Cloud metadata service"},
	{netip.MustParsePrefix("100.100.100.200/32"), "the Alibaba Cloud metadata service"},
	{netip.MustParsePrefix("fd00:ec2::254/128"), "the AWS IPv6 metadata service"},
}

var nat64 = []netip.Prefix{netip.MustParsePrefix("64:ff9b::/96"), netip.MustParsePrefix("64:ff9b:1::/48")}

// refusedAddress says why ip is refused, or "".
func refusedAddress(ip netip.Addr) string {
	candidates := []netip.Addr{ip, ip.Unmap()}
	for _, p := range nat64 {
		if ip.Is6() && p.Contains(ip) {
			b := ip.As16()
			candidates = append(candidates, netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
		}
	}
	for _, c := range candidates {
		for _, r := range RefusedAddresses {
			if r.Prefix.Contains(c) {
				return r.What
			}
		}
	}
	if ip.Unmap().IsLinkLocalMulticast() {
		return "a link-local multicast address"
	}
	return ""
}

// guardedDialer checks the address actually dialled, after name
// resolution, so a host name that resolves (or rebinds) to a refused
// address is refused too. No request is sent.
func guardedDialer(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	guarded := *d
	guarded.Control = func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err == nil {
			if what := refusedAddress(ap.Addr()); what != "" {
				return &RefusedAddressError{Host: address, IP: ap.Addr(), What: what}
			}
		}
		return nil
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := guarded.DialContext(ctx, network, addr)
		var refused *RefusedAddressError
		if err != nil && errors.As(err, &refused) {
			refused.Host = addr
		}
		return conn, err
	}
}

// guardedProxy is http.ProxyFromEnvironment that checks the destination
// first: through a proxy the dialer only sees the proxy's address, so the
// API host is resolved here, and a refused one never reaches the proxy's
// CONNECT.
func guardedProxy(base func(*http.Request) (*url.URL, error), lookup func(ctx context.Context, host string) ([]netip.Addr, error)) func(*http.Request) (*url.URL, error) {
	return func(req *http.Request) (*url.URL, error) {
		proxy, err := base(req)
		if err != nil || proxy == nil {
			return proxy, err
		}
		host := req.URL.Hostname()
		addrs := []netip.Addr{}
		if ip, err := netip.ParseAddr(host); err == nil {
			addrs = append(addrs, ip)
		} else if addrs, err = lookup(req.Context(), host); err != nil {
			return nil, fmt.Errorf("resolving %s before using the proxy: %w", host, err)
		}
		for _, ip := range addrs {
			if what := refusedAddress(ip); what != "" {
				return nil, &RefusedAddressError{Host: req.URL.Host, IP: ip, What: what}
			}
		}
		return proxy, nil
	}
}

func lookupHost(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}
