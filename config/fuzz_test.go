package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics or hangs, that every error it
// returns is located inside the input, and that whatever it accepts
// survives Marshal and Parse unchanged.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("../configs/*.toml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	key := examplePublic(f, "a").String()
	for _, s := range []string{
		"",
		"[interface]\nprivate_key_file = \"/k\"\n",
		"peer = [{name = \"a\", public_key = \"" + key + "\", allowed_ips = [\"10.0.0.0/8\"]}]\n[interface]\nprivate_key_file = \"/k\"\n",
		"[interface]\nprivate_key_file = \"/k\"\n[[peer]]\nname = \"\"\"a\"\"\"\npublic_key = '" + key + "'\nallowed_ips = [\n\"10.0.0.1/24\",\n]\nendpoint = \"[::1]:1\"\n[[peer.x]]\n",
		"a.b.c = { d = [1, {e = 2}] }\n\"k\\u0041\" = 1979-05-27 07:32:00Z\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.toml")
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %T is not a non-empty ErrorList: %v", err, err)
			}
			lines := strings.Count(string(data), "\n") + 1
			for _, e := range list {
				if e.File != "fuzz.toml" || e.Line < 0 || e.Line > lines {
					t.Fatalf("error outside the input (%d lines): %+v", lines, e)
				}
			}
			return
		}
		roundTrip(t, c)
	})
}
