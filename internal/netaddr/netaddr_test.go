package netaddr

import (
	"net"
	"testing"
)

func TestLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST:5000": true, "127.0.0.1": true, "127.8.9.1:80": true, "::1": true, "[::1]:8080": true,
		"localhost.example.com": false, "128.0.0.1": false, "[::1]": true, "0.0.0.0:8080": false, "10.0.0.1": false, "registry.example.com:443": false, "": false, "[::]:80": false,
	} {
		if got := LoopbackHost(host); got != want {
			t.Errorf("LoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestLocalJudgesTheBoundAddress(t *testing.T) {
	for _, c := range []struct {
		addr net.Addr
		want bool
	}{
		{&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 80}, true},
		{&net.TCPAddr{IP: net.ParseIP("::1"), Port: 80}, true},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 80}, false},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 80}, false},
		{&net.TCPAddr{IP: net.ParseIP("192.168.1.4"), Port: 80}, false},
		{&net.UnixAddr{Name: "/run/ispec.sock", Net: "unix"}, true},
		{nil, false},
	} {
		if got := Local(c.addr); got != c.want {
			t.Errorf("Local(%v) = %v, want %v", c.addr, got, c.want)
		}
	}
}
