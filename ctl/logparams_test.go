package ctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/current-vpn/current/config"
)

func TestTruncate(t *testing.T) {
	if got := truncate("short", 5); got != "short" {
		t.Errorf("truncate at the limit = %q", got)
	}
	if got, want := truncate("0123456789", 4), "0123...[6 bytes cut]"; got != want {
		t.Errorf("truncate = %q, want %q", got, want)
	}
	// Every cut point across multi-byte sequences: the kept part is valid
	// UTF-8, within the bound, and with the count adds up to the input.
	s := strings.Repeat("aé€😀", 20)
	for n := 0; n <= len(s); n++ {
		got := truncate(s, n)
		if len(s) <= n {
			if got != s {
				t.Fatalf("n=%d: cut a string that fits", n)
			}
			continue
		}
		kept, marker, ok := strings.Cut(got, "...[")
		if !ok || !strings.HasSuffix(marker, " bytes cut]") {
			t.Fatalf("n=%d: no marker in %q", n, got)
		}
		cut, err := strconv.Atoi(strings.TrimSuffix(marker, " bytes cut]"))
		if err != nil || len(kept)+cut != len(s) || len(kept) > n || n-len(kept) > 3 || !utf8.ValidString(kept) || !strings.HasPrefix(s, kept) {
			t.Fatalf("n=%d: %q", n, got)
		}
	}
}

func TestLogParams(t *testing.T) {
	priv, err := config.GeneratePrivateKey(config.DefaultSuite)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := priv.Public()
	if err != nil {
		t.Fatal(err)
	}
	secret := priv.String()
	_, b64, _ := strings.Cut(strings.TrimPrefix(secret, config.PrivateKeyPrefix), ":")
	js := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	escaped := strings.Replace(js(secret), "-", `\u002d`, 1)
	upper := strings.ToUpper(config.PrivateKeyPrefix) + strings.TrimPrefix(secret, config.PrivateKeyPrefix)

	for _, tc := range []struct {
		name, op, params, want string
	}{
		{"valid add", OpPeerAdd,
			`{"peer": {"name": "carol", "public_key": "` + pub.String() + `", "allowed_ips": ["10.9.0.0/16"], "persistent_keepalive_seconds": 25}, "save": true}`,
			`{"peer":{"name":"carol","public_key":"` + pub.String() + `","allowed_ips":["10.9.0.0/16"],"persistent_keepalive_seconds":25},"save":true}`},
		{"private key as public key", OpPeerAdd, `{"peer":{"name":"c","public_key":` + js(secret) + `}}`,
			`{"peer":{"name":"c","public_key":"[redacted]"}}`},
		{"private key behind a JSON escape", OpPeerAdd, `{"peer":{"name":"c","public_key":` + escaped + `}}`,
			`{"peer":{"name":"c","public_key":"[redacted]"}}`},
		{"bare base64 as public key", OpPeerAdd, `{"peer":{"name":"c","public_key":"` + b64 + `"}}`,
			`{"peer":{"name":"c","public_key":"[redacted]"}}`},
		{"private key as a name", OpPeerAdd, `{"peer":{"name":` + js(upper) + `}}`,
			`{"peer":{"name":"[redacted]"}}`},
		{"unknown field", OpPeerAdd, `{"peer":{"name":"c","private_key":"` + b64 + `"}}`,
			`{"peer":{"name":"c","private_key":"[redacted]"}}`},
		{"private key as a field name", OpPeerAdd, `{"peer":{` + js(secret) + `:1}}`,
			`{"peer":{"[redacted]":"[redacted]"}}`},
		{"wrong type", OpPeerAdd, `{"peer":{"name":{"x":"` + b64 + `"},"allowed_ips":"` + b64 + `"}}`,
			`{"peer":{"name":"[redacted]","allowed_ips":"[redacted]"}}`},
		{"nested arrays", OpPeerUpdate, `{"peer":"carol","allowed_ips":[["` + b64 + `"], "10.0.0.0/8"]}`,
			`{"peer":"carol","allowed_ips":["[redacted]","10.0.0.0/8"]}`},
		{"private key as peer reference", OpPeerRemove, `{"peer":` + js(secret) + `}`, `{"peer":"[redacted]"}`},
		{"broken key as peer reference", OpPeerRemove, `{"peer":"ed25519:` + b64 + `x"}`, `{"peer":"[redacted]"}`},
		{"name as peer reference", OpPeerRemove, `{"peer":"alice","save":false}`, `{"peer":"alice","save":false}`},
		{"key as peer reference", OpRekey, `{"peer":"` + pub.String() + `","timeout_seconds":1.5}`, `{"peer":"` + pub.String() + `","timeout_seconds":1.5}`},
		{"numbers", OpSet, `{"rekey_interval_seconds": 60, "rekey_bytes": 1e9}`, `{"rekey_interval_seconds":60,"rekey_bytes":1e9}`},
		{"not an object", OpSet, js(secret), `"[redacted]"`},
		{"null", OpSet, `null`, `null`},
		{"absent", OpSet, ``, ``},
		{"an op without logged params", OpShow, `{"peer":"alice"}`, `[redacted]`},
	} {
		got := logParams(tc.op, json.RawMessage(tc.params))
		if got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
		if strings.Contains(got, b64) {
			t.Errorf("%s: the private key is in %s", tc.name, got)
		}
	}

	// Long parameters are cut to the bound.
	ips := make([]string, 4000)
	for i := range ips {
		ips[i] = fmt.Sprintf("10.%d.%d.0/24", i/256, i%256)
	}
	raw := `{"peer":{"name":"big","public_key":"` + pub.String() + `","allowed_ips":` + js(ips) + `}}`
	got := logParams(OpPeerAdd, json.RawMessage(raw))
	kept, _, ok := strings.Cut(got, "...[")
	if !ok || len(kept) > maxLoggedParams || !strings.HasPrefix(got, `{"peer":{"name":"big"`) || !strings.HasSuffix(got, " bytes cut]") {
		t.Errorf("long params logged as %d bytes: %.300s", len(got), got)
	}
}

func TestLogError(t *testing.T) {
	priv, err := config.GeneratePrivateKey(config.DefaultSuite)
	if err != nil {
		t.Fatal(err)
	}
	secret := priv.String()
	got := logError(fmt.Errorf("peer %q: this is a private key; and %s again", secret, secret))
	if want := `peer "[redacted]": this is a private key; and [redacted] again`; got != want {
		t.Errorf("logError = %q, want %q", got, want)
	}
	got = logError(errors.New(strings.Repeat("x", 5000)))
	if !strings.HasPrefix(got, strings.Repeat("x", maxLoggedError)+"...[") || !strings.HasSuffix(got, "[3976 bytes cut]") {
		t.Errorf("long error logged as %q", got)
	}
}

// FuzzLogParams: whatever a client sends, rendering its parameters does
// not panic, stays within the bound and lets no private key text through,
// however it is spelt (escapes, case). A bare base64 string cannot be told
// from a name, so that is not checked here; TestLogParams checks the
// fields where one is plausible.
func FuzzLogParams(f *testing.F) {
	const key = "current-private-key:mls-xwing-ed25519:+IlYRNsDnymrGIIambAe1WvAvfQeJu5rzRG039bW17M="
	f.Add(OpPeerAdd, `{"peer":{"name":"c","public_key":"`+key+`","allowed_ips":["10.0.0.0/8"]},"save":true}`)
	f.Add(OpPeerUpdate, `{"peer":"alice","allowed_ips":[["x"],{"a":1}],"endpoint":null}`)
	f.Add(OpSet, `{"rekey_bytes":1e400,"x":{"y":[1,2,{"z":"`+key+`"}]}}`)
	f.Fuzz(func(t *testing.T, op, params string) {
		if !json.Valid([]byte(params)) {
			return // the envelope's decoding refuses it before
		}
		got := logParams(op, json.RawMessage(params))
		kept, _, _ := strings.Cut(got, "...[")
		if len(kept) > maxLoggedParams {
			t.Fatalf("%d bytes logged", len(kept))
		}
		if hasPrivateKeyPrefix(got) {
			t.Fatalf("key logged: %s", got)
		}
	})
}
