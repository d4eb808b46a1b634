package config

import "testing"

func TestParseMetricsKeys(t *testing.T) {
	peer := peerText("a", "KEY_A", `"10.0.0.1/32"`)
	tests := []struct {
		keys         string
		listen       MetricsListen
		public, aggr bool
	}{
		{"", MetricsListen{}, false, false},
		{`metrics_listen = "127.0.0.1:9586"`, MetricsListen{"tcp", "127.0.0.1:9586"}, false, false},
		{`metrics_listen = "[::1]:9586"`, MetricsListen{"tcp", "[::1]:9586"}, false, false},
		{`metrics_listen = "localhost:9586"`, MetricsListen{"tcp", "localhost:9586"}, false, false},
		{`metrics_listen = "unix:/run/current//metrics.sock"`, MetricsListen{"unix", "/run/current/metrics.sock"}, false, false},
		{"metrics_listen = \"0.0.0.0:9586\"\nmetrics_listen_public = true\nmetrics_per_peer = false",
			MetricsListen{"tcp", "0.0.0.0:9586"}, true, true},
		{"metrics_per_peer = false", MetricsListen{}, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.keys, func(t *testing.T) {
			c, err := Parse([]byte(doc(t, ifaceHead+tc.keys+"\n"+peer)), "t.toml")
			if err != nil {
				t.Fatal(err)
			}
			ifc := c.Interface
			if ifc.MetricsListen != tc.listen || ifc.MetricsListenPublic != tc.public || ifc.MetricsAggregateOnly != tc.aggr {
				t.Errorf("got %+v public %v aggregate %v", ifc.MetricsListen, ifc.MetricsListenPublic, ifc.MetricsAggregateOnly)
			}
			roundTrip(t, c)
		})
	}
}

func TestMetricsListenPrivate(t *testing.T) {
	for s, want := range map[string]bool{
		"127.0.0.1:1":          true,
		"127.9.9.9:1":          true,
		"[::1]:1":              true,
		"localhost:1":          true,
		"unix:/x":              true,
		"0.0.0.0:1":            false,
		"[::]:1":               false,
		"10.0.0.1:9586":        false,
		"[::ffff:127.0.0.1]:1": true,
	} {
		m, err := ParseMetricsListen(s)
		if err != nil {
			t.Errorf("%s: %v", s, err)
			continue
		}
		if m.Private() != want {
			t.Errorf("%s: Private() = %v", s, !want)
		}
		if m.String() != s {
			t.Errorf("%s: String() = %s", s, m)
		}
	}
}

// FuzzParseMetricsListen checks that any accepted address prints back to
// itself (up to the socket path's cleaning) and parses again the same.
func FuzzParseMetricsListen(f *testing.F) {
	for _, s := range []string{"127.0.0.1:9586", "[::1]:9586", "localhost:1", "unix:/run/m.sock", "unix:", "[fe80::1%eth0]:1", ":9586", "0.0.0.0:65536"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMetricsListen(s)
		if err != nil {
			return
		}
		m2, err := ParseMetricsListen(m.String())
		if err != nil || m2 != m {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, m, m.String(), m2, err)
		}
		_ = m.Private()
	})
}
