package main

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/current-vpn/current/tunnel"
)

func TestConfigEndpoints(t *testing.T) {
	got := configEndpoints([]tunnel.PeerConfig{
		{Endpoint: "198.51.100.7:51820"},
		{Endpoint: "[2001:db8::1]:443"},
		{Endpoint: "[::ffff:192.0.2.3]:1"},
		{Endpoint: "vpn.example.net:51820"},
		{},
	})
	want := []netip.Addr{netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("192.0.2.3")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%v, want %v", got, want)
	}
}

func TestPeerEndpoints(t *testing.T) {
	got := peerEndpoints([]tunnel.PeerStatus{
		{Endpoint: "vpn.example.net:51820", RemoteAddress: "203.0.113.4:51820"},
		{Endpoint: "198.51.100.7:51820", RemoteAddress: "198.51.100.9:40000"}, // roamed
		{Endpoint: "", RemoteAddress: ""},                                     // dials us, not connected
	})
	want := []netip.Addr{netip.MustParseAddr("203.0.113.4"), netip.MustParseAddr("198.51.100.9"), netip.MustParseAddr("198.51.100.7")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%v, want %v", got, want)
	}
}
