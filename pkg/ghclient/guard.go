package ghclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// RefusedAddressError is returned when an API host resolves to an address
// no GitHub API lives at: link-local ranges, where cloud metadata services
// answer with credentials for whoever asks.
type RefusedAddressError struct {
	Host string
	IP   netip.Addr
}

func (e *RefusedAddressError) Error() string {
	return fmt.Sprintf("refusing to connect to %s: it resolves to %s, a link-local or cloud metadata address", e.Host, e.IP)
}

// metadataAddrs are cloud metadata endpoints outside the link-local ranges.
var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
	netip.MustParseAddr("fd00:ec2::254"),   // AWS (IPv6)
}

// refusedAddress reports addresses the client never connects to.
func refusedAddress(ip netip.Addr) bool {
	ip = ip.Unmap()
	if ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() {
		return true // includes 169.254.169.254 (AWS, GCP, Azure metadata)
	}
	for _, m := range metadataAddrs {
		if ip == m {
			return true
		}
	}
	return false
}

// guardedDialer checks the address actually dialled, after name
// resolution, so a host name that resolves (or rebinds) to a metadata
// address is refused too. No request is sent.
func guardedDialer(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	guarded := *d
	guarded.Control = func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err == nil && refusedAddress(ap.Addr()) {
			return &RefusedAddressError{Host: address, IP: ap.Addr()}
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
