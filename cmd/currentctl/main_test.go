package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/current-vpn/current/config"
)

func run(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	a := app()
	var out bytes.Buffer
	a.Writer, a.ErrWriter, a.Reader = &out, &out, strings.NewReader(stdin)
	err := a.Run(append([]string{"currentctl"}, args...))
	return out.String(), err
}

func TestGenkeyPubkey(t *testing.T) {
	for _, suite := range []string{"", "mls-mlkem768-mldsa65", "mls-p256-aes128-p256"} {
		args := []string{"genkey"}
		if suite != "" {
			args = append(args, "--suite", suite)
		}
		priv, err := run(t, "", args...)
		if err != nil {
			t.Fatalf("genkey %s: %v", suite, err)
		}
		k, err := config.ParsePrivateKey(priv)
		if err != nil {
			t.Fatalf("genkey %s output: %v", suite, err)
		}
		pub, err := run(t, priv, "pubkey")
		if err != nil {
			t.Fatalf("pubkey: %v", err)
		}
		want, _ := k.Public()
		if strings.TrimSpace(pub) != want.String() {
			t.Fatalf("pubkey = %q, want %q", pub, want)
		}
		if _, err := config.ParsePublicKey(strings.TrimSpace(pub)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := run(t, "", "genkey", "--suite", "nope"); err == nil {
		t.Error("unknown suite accepted")
	}
	if _, err := run(t, "garbage\n", "pubkey"); err == nil {
		t.Error("garbage key accepted")
	}
}
