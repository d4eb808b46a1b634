package ctl_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/current-vpn/current/config"
	"github.com/current-vpn/current/ctl"
)

// linesWith returns the lines whose msg is msg.
func linesWith(lines []map[string]any, msg string) []map[string]any {
	var out []map[string]any
	for _, l := range lines {
		if l["msg"] == msg {
			out = append(out, l)
		}
	}
	return out
}

// TestRequestLog: failed requests are logged with bounded, redacted
// parameters, once per kind and interval, and what was held back is
// counted when the server closes; successful changes are always logged.
func TestRequestLog(t *testing.T) {
	var out ctl.LogCapture
	ts := startServerLog(t, out.Logger())
	priv, err := config.GeneratePrivateKey(config.DefaultSuite)
	if err != nil {
		t.Fatal(err)
	}
	_, secret, _ := strings.Cut(strings.TrimPrefix(priv.String(), config.PrivateKeyPrefix), ":")

	// A private key pasted as the public key, with enough prefixes that
	// the parameters are kilobytes long.
	ips := make([]string, 500)
	for i := range ips {
		ips[i] = fmt.Sprintf("10.1.%d.0/24", i%256)
	}
	params, _ := json.Marshal(ctl.PeerAddParams{Peer: ctl.PeerSpec{Name: "carol", PublicKey: priv.String(), AllowedIPs: ips}})
	bad := `{"version":1,"op":"peer.add","params":` + string(params) + "}\n"
	rc := ts.raw(t)
	for range 30 {
		if resp := rc.roundTrip(bad); resp.Error == nil || resp.Error.Code != ctl.CodeBadRequest {
			t.Fatalf("bad add: %+v", resp)
		}
	}
	// The same failure on another connection is the same kind.
	if resp := ts.raw(t).roundTrip(bad); resp.Error == nil {
		t.Fatalf("bad add: %+v", resp)
	}
	// Another kind is logged, and so is a change that worked.
	if resp := rc.roundTrip(`{"version":1,"op":"peer.remove","params":{"peer":"nobody"}}` + "\n"); resp.Error == nil || resp.Error.Code != ctl.CodeUnknownPeer {
		t.Fatalf("remove: %+v", resp)
	}
	for range 3 {
		if resp := rc.roundTrip(`{"version":1,"op":"set","params":{"rekey_bytes":1000}}` + "\n"); !resp.OK {
			t.Fatalf("set: %+v", resp)
		}
	}

	lines := out.Lines(t)
	failed := linesWith(lines, "ctl: request failed")
	if len(failed) != 2 || failed[0]["op"] != ctl.OpPeerAdd || failed[1]["op"] != ctl.OpPeerRemove || failed[1]["code"] != "unknown_peer" {
		t.Fatalf("failure lines: %v", failed)
	}
	logged, _ := failed[0]["params"].(string)
	kept, marker, ok := strings.Cut(logged, "...[")
	if !ok || len(kept) > 256 || !strings.HasSuffix(marker, " bytes cut]") ||
		!strings.HasPrefix(kept, `{"peer":{"name":"carol","public_key":"[redacted]","allowed_ips":["10.1.0.0/24",`) {
		t.Errorf("params logged as %q", logged)
	}
	if failed[0]["code"] != "bad_request" || failed[0]["uid"] == nil || failed[0]["pid"] == nil {
		t.Errorf("failure line %v", failed[0])
	}
	if done := linesWith(lines, "ctl: request done"); len(done) != 3 || done[0]["params"] != `{"rekey_bytes":1000}` {
		t.Errorf("change lines: %v", done)
	}

	ts.stop(t)
	lines = out.Lines(t)
	rep := linesWith(lines, "ctl: request failed (repeated)")
	if len(rep) != 1 || rep[0]["count"] != 30.0 || rep[0]["op"] != ctl.OpPeerAdd || rep[0]["code"] != "bad_request" ||
		!strings.Contains(rep[0]["last_err"].(string), "this is a private key") {
		t.Errorf("summary lines: %v", rep)
	}
	if len(lines) != 6 {
		t.Errorf("%d lines, want 6 (2 failures, 3 changes, 1 summary):\n%s", len(lines), out.Text())
	}
	if strings.Contains(out.Text(), secret) {
		t.Errorf("the private key is in the log:\n%s", out.Text())
	}
}
