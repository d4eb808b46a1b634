package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestScanPositions(t *testing.T) {
	src := `# [[peer]] in a comment is not a table
top = "x" # comment
"quoted.key" = 1
dotted.a.b = [1, 2]

[interface]
name = """
[[peer]]
name = "not a key"
"""
lit = '''
'quoted' ]] }
'''
esc = "a\"[[peer]]"
addresses = [
  "10.0.0.1/24", # one
  # a comment line
  "fd00::1/64",
  [ "nested", 'x' ],
]
when = 1979-05-27 07:32:00Z
times = [1979-05-27 07:32:00Z, 1979-05-28 07:32:00Z]

[[peer]]
name = "a"

[[peer]]
name = "b"
tbl = { x = 1, y = [
  "p",
  "q" ] }

[[peer.sub]]
k = 1

[[peer]]
name = "c"
quote5 = """a"""""
`
	if _, err := toml.Decode(src, new(map[string]any)); err != nil {
		t.Fatalf("test document is not valid TOML: %v", err)
	}
	want := map[string]int{
		"top":                       2,
		`"quoted.key"`:              3,
		"dotted":                    4,
		"dotted.a.b":                4,
		"dotted.a.b[1]":             4,
		"interface":                 6,
		"interface.name":            7,
		"interface.lit":             11,
		"interface.esc":             14,
		"interface.addresses":       15,
		"interface.addresses[0]":    16,
		"interface.addresses[1]":    18,
		"interface.addresses[2]":    19,
		"interface.addresses[2][1]": 19,
		"interface.when":            21,
		"interface.times[1]":        22,
		"peer":                      24,
		"peer[0]":                   24,
		"peer[0].name":              25,
		"peer[1]":                   27,
		"peer[1].name":              28,
		"peer[1].tbl.x":             29,
		"peer[1].tbl.y[1]":          31,
		"peer[1].sub[0]":            33,
		"peer[1].sub[0].k":          34,
		"peer[2]":                   36,
		"peer[2].name":              37,
		"peer[2].quote5":            38,
	}
	got := scanPositions(src)
	for k, l := range want {
		if got[k] != l {
			t.Errorf("%s: line %d, want %d", k, got[k], l)
		}
	}
	for k := range got {
		if strings.Contains(k, "not a key") || k == "peer[3]" {
			t.Errorf("scanner took string content for a key: %s", k)
		}
	}
}

// TestScanPositionsExamples checks that the scanner finds every key of the
// examples at the line where it is written.
func TestScanPositionsExamples(t *testing.T) {
	files, _ := filepath.Glob("../configs/*.toml")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pos := scanPositions(string(data))
		peer := -1
		for i, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line == "[[peer]]" {
				peer++
				continue
			}
			k, _, ok := strings.Cut(line, " = ")
			if !ok || strings.HasPrefix(line, "#") {
				continue
			}
			path := "interface." + k
			if peer >= 0 {
				path = "peer[" + string(rune('0'+peer)) + "]." + k
			}
			if pos[path] != i+1 {
				t.Errorf("%s: %s at line %d, scanner says %d", f, path, i+1, pos[path])
			}
		}
	}
}
