package tun

import "testing"

func TestTunName(t *testing.T) {
	for _, tc := range []struct {
		goos, name, want string
		fails            bool
	}{
		{goos: "linux", name: "current%d", want: "current%d"},
		{goos: "linux", name: "wg0", want: "wg0"},
		{goos: "darwin", name: "utun", want: "utun"},
		{goos: "darwin", name: "utun7", want: "utun7"},
		{goos: "darwin", name: "current0", want: "utun"},
		{goos: "darwin", name: "utun07", want: "utun"},
		{goos: "darwin", name: "utunx", want: "utun"},
		{goos: "freebsd", name: "current0", want: "current0"},
		{goos: "freebsd", name: "current%d", fails: true},
	} {
		got, err := tunName(tc.goos, tc.name)
		if tc.fails {
			if err == nil {
				t.Errorf("%s %q: %q, want an error", tc.goos, tc.name, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s %q: %q, %v; want %q", tc.goos, tc.name, got, err, tc.want)
		}
	}
}
