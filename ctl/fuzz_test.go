package ctl_test

import (
	"bufio"
	"bytes"
	"context"
	"maps"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/current-vpn/current/ctl"
)

// FuzzServe sends one arbitrary request line to a running server and
// checks what a hostile or confused client must never achieve: a panic
// (the server would answer CodeInternal), a malformed or missing answer, a
// configuration change by a refused request, an invalid configuration by
// an accepted one, or a connection that stops answering.
func FuzzServe(f *testing.F) {
	for _, s := range []string{
		`{"version":1,"id":"1","op":"show"}`,
		`{"version":1,"op":"show","params":{"peer":"alice"}}`,
		`{"version":1,"op":"peer.add","params":{"peer":{"name":"carol","public_key":"ed25519:AAAA","allowed_ips":["10.9.0.0/16"],"endpoint":"192.0.2.9:51900"},"save":true}}`,
		`{"version":1,"op":"peer.remove","params":{"peer":"bob","save":true}}`,
		`{"version":1,"op":"peer.update","params":{"peer":"alice","allowed_ips":["10.1.0.0/24"],"persistent_keepalive":25,"transport":"tcp"}}`,
		`{"version":1,"op":"rekey","params":{"all":true,"timeout_seconds":0.5}}`,
		`{"version":1,"op":"set","params":{"rekey_interval":"90s","rekey_bytes":"1GiB"}}`,
		`{"version":1,"op":"metrics"}`,
		`{"version":1,"op":"version"}`,
		`{"version":1,"op":"set","params":{"rekey_interval":-1}}`,
		`garbage`, `{}`, `[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	ts := startServer(f)
	ts.fake.Lock()
	baseCfg, baseRuntime := ts.fake.Cfg, maps.Clone(ts.fake.Runtime)
	ts.fake.Unlock()
	f.Fuzz(func(t *testing.T, line []byte) {
		line = bytes.ReplaceAll(line, []byte("\n"), []byte(" "))
		ts.fake.Lock()
		ts.fake.Cfg, ts.fake.Runtime = baseCfg, maps.Clone(baseRuntime)
		ts.fake.Unlock()

		rc := ts.raw(t)
		if len(line)+1 > ctl.MaxLineSize {
			go rc.c.Write(append(line, '\n')) // the server stops reading
			if resp := rc.read(); resp.Error == nil || resp.Error.Code != ctl.CodeTooLarge {
				t.Fatalf("oversized line: %+v", resp)
			}
			return
		}
		resp := rc.roundTrip(string(line) + "\n")
		if resp.Version != ctl.ProtocolVersion || resp.OK == (resp.Error != nil) {
			t.Fatalf("malformed response %+v to %q", resp, line)
		}
		ts.fake.Lock()
		cfg := ts.fake.Cfg
		ts.fake.Unlock()
		if resp.Error != nil {
			if resp.Error.Code == "" || resp.Error.Code == ctl.CodeInternal {
				t.Fatalf("request %q: error %+v", line, resp.Error)
			}
			if cfg != baseCfg {
				t.Fatalf("refused request %q (%v) changed the configuration", line, resp.Error)
			}
		} else if err := cfg.Validate(); err != nil {
			t.Fatalf("accepted request %q left an invalid configuration: %v", line, err)
		}
		if again := rc.roundTrip(`{"version":1,"id":"after","op":"version"}` + "\n"); !again.OK || again.ID != "after" {
			t.Fatalf("after %q the connection answers %+v", line, again)
		}
	})
}

// FuzzClientResponse answers a client's request with arbitrary bytes: the
// client must return (a result or an error), never panic or wait past its
// context.
func FuzzClientResponse(f *testing.F) {
	for _, s := range []string{
		`{"version":1,"id":"1","ok":true,"result":{"time":"2026-05-01T12:00:00Z","interface":{"name":"current0"},"peers":[{"name":"a","epoch":3}]}}`,
		`{"version":1,"id":"1","ok":true,"result":null}`,
		`{"version":1,"id":"1","error":{"code":"unknown_peer","message":"no peer"}}`,
		`{"version":1,"id":"2","ok":true,"result":{}}`,
		`{"version":2,"id":"1","ok":true}`,
		`{"version":1,"id":"1"}`,
		`{"version":1,"id":"1","ok":true,"result":{"peers":"x"}}`,
		"", "\n", "{", `{"version":1,"id":"1","ok":true,"result":{}}` + "\n" + "trailing",
	} {
		f.Add([]byte(s), true)
	}
	path := filepath.Join(f.TempDir(), "fuzz.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { ln.Close() })
	f.Fuzz(func(t *testing.T, answer []byte, newline bool) {
		served := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				served <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := bufio.NewReader(c).ReadBytes('\n'); err != nil {
				served <- err
				return
			}
			out := answer
			if newline {
				// A copy: a fuzz target must not change its input.
				out = append(bytes.Clone(answer), '\n')
			}
			_, err = c.Write(out)
			served <- err
		}()
		client, err := ctl.Dial(path)
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := client.Status(ctx, "")
		if ctx.Err() != nil {
			t.Fatalf("the client waited for its deadline: %v", err)
		}
		if err == nil && st == nil {
			t.Fatal("no status and no error")
		}
		if err != nil && strings.TrimSpace(err.Error()) == "" {
			t.Fatal("empty error")
		}
		if err := <-served; err != nil {
			t.Fatal(err)
		}
	})
}
