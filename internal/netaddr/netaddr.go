// Package netaddr answers whether an address is local to this host: the
// one loopback test of the client, the server and the registry client.
package netaddr

import (
	"net"
	"strings"
)

// LoopbackHost reports whether host (a name or an IP, with or without a
// port, IPv6 with or without brackets) is localhost, 127.0.0.0/8 or ::1.
// It judges the spelling only; a listener's bound address is judged by
// Local.
func LoopbackHost(host string) bool {
	h := host
	if sh, _, err := net.SplitHostPort(host); err == nil {
		h = sh
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Local reports whether a bound address can be reached from this host
// only: a TCP or UDP address on a loopback IP, or a unix socket. An
// unspecified IP (0.0.0.0, ::) listens on every interface and is not local.
func Local(a net.Addr) bool {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UDPAddr:
		return a.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	return false
}
