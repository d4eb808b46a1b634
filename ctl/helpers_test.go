package ctl_test

import (
	"testing"

	"github.com/current-vpn/current/config"
	"github.com/current-vpn/current/ctl/ctltest"
)

func newKey(t testing.TB) config.PublicKey {
	t.Helper()
	k, err := ctltest.NewPublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}
