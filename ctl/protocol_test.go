package ctl_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/current-vpn/current/config"
	"github.com/current-vpn/current/ctl"
)

func TestDecodeRequest(t *testing.T) {
	long := `{"version":1,"op":"show","params":{"peer":"` + strings.Repeat("a", ctl.MaxLineSize) + `"}}`
	for _, tc := range []struct {
		line string
		code ctl.Code // "" = valid
	}{
		{`{"version":1,"op":"show"}`, ""},
		{`{"version":1,"id":"7","op":"show","params":{"peer":"alice"}}` + "\n", ""},
		{`{"version":1,"op":"show","params":null}` + "\r\n", ""},
		{` { "version" : 1 , "op" : "metrics" } `, ""},
		{``, ctl.CodeBadRequest},
		{`null`, ctl.CodeBadRequest},
		{`[]`, ctl.CodeBadRequest},
		{`"show"`, ctl.CodeBadRequest},
		{`{"version":1,"op":"show"`, ctl.CodeBadRequest},
		{`{"version":1,"op":"show"}{}`, ctl.CodeBadRequest},
		{`{"version":1,"op":"show"} x`, ctl.CodeBadRequest},
		{`{"version":1,"op":"show","extra":1}`, ctl.CodeBadRequest},
		{`{"version":1,"OP":"show"}`, ctl.CodeBadRequest},
		{`{"version":1,"op":"show","op":"peer.remove"}`, ctl.CodeBadRequest},
		{`{"version":"1","op":"show"}`, ctl.CodeBadRequest},
		{`{"version":1.5,"op":"show"}`, ctl.CodeBadRequest},
		{`{"version":1,"op":7}`, ctl.CodeBadRequest},
		{`{"version":1}`, ctl.CodeBadRequest},
		{`{"version":1,"op":"show","id":"a\nb"}`, ctl.CodeBadRequest},
		{`{"version":1,"op":"show","id":"` + strings.Repeat("x", 65) + `"}`, ctl.CodeBadRequest},
		{"{\"version\":1,\"op\":\"show\xff\"}", ctl.CodeBadRequest},
		{`{"op":"show"}`, ctl.CodeUnsupportedVersion},
		{`{"version":2,"op":"show"}`, ctl.CodeUnsupportedVersion},
		{long, ctl.CodeTooLarge},
	} {
		req, err := ctl.DecodeRequest([]byte(tc.line))
		if tc.code == "" {
			if err != nil {
				t.Errorf("DecodeRequest(%.60q): %v", tc.line, err)
			} else if req.Version != 1 || req.Op == "" {
				t.Errorf("DecodeRequest(%.60q) = %+v", tc.line, req)
			}
			continue
		}
		var e *ctl.Error
		if !errors.As(err, &e) || e.Code != tc.code {
			t.Errorf("DecodeRequest(%.60q) error = %v, want code %s", tc.line, err, tc.code)
		}
	}
}

func TestDecodeParamsStrict(t *testing.T) {
	good := `{"peer":{"name":"bob","public_key":"k","allowed_ips":["10.0.0.3/32"],"persistent_keepalive_seconds":25},"save":true}`
	var p ctl.PeerAddParams
	if err := ctl.DecodeParams(json.RawMessage(good), &p); err != nil {
		t.Fatal(err)
	}
	if !p.Save || p.Peer.Name != "bob" || p.Peer.PersistentKeepalive.Duration() != 25*time.Second {
		t.Fatalf("decoded %+v", p)
	}
	for _, bad := range []string{
		`{"peer":{"name":"bob","Public_Key":"k"}}`,
		`{"peer":{"name":"bob","nickname":"b"}}`,
		`{"peer":{"name":"bob","name":"eve"}}`,
		`{"peer":{"name":"bob"},"save":"yes"}`,
		`{"peer":{"name":"bob","persistent_keepalive_seconds":-1}}`,
		`{"peer":{"name":"bob","persistent_keepalive_seconds":"25s"}}`,
		`{"peer":{"name":"bob","persistent_keepalive_seconds":1e300}}`,
		`{"peer":{"name":"bob","allowed_ips":[{"x":1}]}}`,
		`[1]`,
	} {
		var p ctl.PeerAddParams
		err := ctl.DecodeParams(json.RawMessage(bad), &p)
		if !errors.Is(err, ctl.ErrBadRequest) {
			t.Errorf("DecodeParams(%s) = %v, want bad_request", bad, err)
		}
	}
}

func TestSecondsJSON(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		text string
	}{{0, "0"}, {25 * time.Second, "25"}, {1500 * time.Millisecond, "1.5"}, {2 * time.Hour, "7200"}} {
		b, err := json.Marshal(ctl.Seconds(tc.d))
		if err != nil || string(b) != tc.text {
			t.Errorf("Marshal(%s) = %s, %v; want %s", tc.d, b, err, tc.text)
		}
		var s ctl.Seconds
		if err := json.Unmarshal([]byte(tc.text), &s); err != nil || s.Duration() != tc.d {
			t.Errorf("Unmarshal(%s) = %s, %v", tc.text, s.Duration(), err)
		}
	}
}

func TestParsePeerRef(t *testing.T) {
	k := newKey(t)
	r, err := ctl.ParsePeerRef(k.String())
	if err != nil || !r.Matches("anything", k) || r.Matches("anything", newKey(t)) {
		t.Fatalf("key ref: %+v %v", r, err)
	}
	r, err = ctl.ParsePeerRef("alice")
	if err != nil || !r.Matches("alice", k) || r.Matches("bob", k) {
		t.Fatalf("name ref: %+v %v", r, err)
	}
	for _, bad := range []string{"", "ed25519:nope", strings.Repeat("n", 65)} {
		if _, err := ctl.ParsePeerRef(bad); !errors.Is(err, ctl.ErrBadRequest) {
			t.Errorf("ParsePeerRef(%q) = %v", bad, err)
		}
	}
	// A private key pasted where a peer goes is refused without being
	// echoed back.
	priv, err := config.GeneratePrivateKey(config.DefaultSuite)
	if err != nil {
		t.Fatal(err)
	}
	text := priv.String()
	secret := text[strings.LastIndex(text, ":")+1:]
	for _, in := range []string{text, strings.ToUpper(text[:len(config.PrivateKeyPrefix)]) + text[len(config.PrivateKeyPrefix):]} {
		_, err := ctl.ParsePeerRef(in)
		if !errors.Is(err, ctl.ErrBadRequest) || strings.Contains(err.Error(), secret[:16]) {
			t.Errorf("ParsePeerRef(private key) = %v", err)
		}
	}
}

func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"version":1,"op":"show"}`,
		`{"version":1,"id":"1","op":"peer.add","params":{"peer":{"name":"a","public_key":"ed25519:x","allowed_ips":["10.0.0.1/32"]}}}`,
		`{"version":1,"op":"rekey","params":{"all":true,"timeout_seconds":1.5}}`,
		`{"version":1,"op":"show","op":"x"}`,
		`{"Version":1}`,
		`{`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		req, err := ctl.DecodeRequest(line)
		if err != nil {
			var e *ctl.Error
			if !errors.As(err, &e) || e.Code == "" {
				t.Fatalf("untyped error %T %v", err, err)
			}
			return
		}
		// What was accepted survives a round trip unchanged.
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ctl.DecodeRequest(b)
		if err != nil {
			t.Fatalf("re-encoded request %s refused: %v", b, err)
		}
		if again.Op != req.Op || again.ID != req.ID || !reflect.DeepEqual(value(t, again.Params), value(t, req.Params)) {
			t.Fatalf("round trip changed %+v into %+v", req, again)
		}
		// Params decoding of every op must not panic either.
		for _, v := range []any{&ctl.ShowParams{}, &ctl.PeerAddParams{}, &ctl.PeerUpdateParams{}, &ctl.RekeyParams{}, &ctl.SetParams{}} {
			_ = ctl.DecodeParams(req.Params, v)
		}
	})
}

func value(t *testing.T, b []byte) any {
	if len(b) == 0 {
		return nil
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}
