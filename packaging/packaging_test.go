// Package packaging_test checks the service definitions for the platforms
// this machine cannot run: the macOS launchd job (parsed as the property
// list launchd reads) and the FreeBSD rc.d script (shellcheck).
package packaging_test

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

const (
	plistPath = "launchd/net.current-vpn.currentd.plist"
	rcdPath   = "freebsd/rc.d/currentd"
	// installedDaemon is where both systems' packages put currentd
	// (/usr/local, the prefix of Homebrew on Intel and of FreeBSD ports).
	installedDaemon = "/usr/local/sbin/currentd"
)

// plistValue is one value of a property list: exactly one field is set.
type plistValue struct {
	String  *string
	Integer *int64
	Bool    *bool
	Array   []plistValue
	Dict    map[string]plistValue
	isArray bool
}

// maxPlistDepth bounds nesting, so that a hostile file cannot recurse
// without end.
const maxPlistDepth = 16

// parsePlist reads an XML property list as plutil -lint accepts it: one
// <plist version="1.0"> holding one value; dict entries are <key> and a
// value, keys unique. Only the types launchd jobs use are known (string,
// integer, true, false, array, dict).
func parsePlist(r io.Reader) (plistValue, error) {
	d := xml.NewDecoder(r)
	d.Strict = true
	for {
		tok, err := d.Token()
		if err != nil {
			return plistValue{}, fmt.Errorf("no <plist>: %w", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if se.Name.Local != "plist" {
			return plistValue{}, fmt.Errorf("root element <%s>, want <plist>", se.Name.Local)
		}
		if v := attr(se, "version"); v != "1.0" {
			return plistValue{}, fmt.Errorf("plist version %q, want 1.0", v)
		}
		start, err := nextStart(d)
		if err != nil {
			return plistValue{}, err
		}
		v, err := parseValue(d, start, 0)
		if err != nil {
			return plistValue{}, err
		}
		if err := expectEnd(d, "plist"); err != nil {
			return plistValue{}, err
		}
		for {
			tok, err := d.Token()
			if errors.Is(err, io.EOF) {
				return v, nil
			}
			if err != nil {
				return plistValue{}, err
			}
			switch t := tok.(type) {
			case xml.StartElement:
				return plistValue{}, fmt.Errorf("<%s> after </plist>", t.Name.Local)
			case xml.CharData:
				if strings.TrimSpace(string(t)) != "" {
					return plistValue{}, errors.New("text after </plist>")
				}
			}
		}
	}
}

func attr(se xml.StartElement, name string) string {
	for _, a := range se.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// nextStart skips white space and comments up to the next element; an
// end element or other text is an error.
func nextStart(d *xml.Decoder) (*xml.StartElement, error) {
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return &t, nil
		case xml.EndElement:
			return nil, nil
		case xml.CharData:
			if strings.TrimSpace(string(t)) != "" {
				return nil, fmt.Errorf("stray text %q", strings.TrimSpace(string(t)))
			}
		}
	}
}

func expectEnd(d *xml.Decoder, name string) error {
	se, err := nextStart(d)
	if err != nil {
		return err
	}
	if se != nil {
		return fmt.Errorf("<%s> where </%s> belongs", se.Name.Local, name)
	}
	return nil
}

// text reads the character data of a leaf element up to its end.
func text(d *xml.Decoder) (string, error) {
	var b strings.Builder
	for {
		tok, err := d.Token()
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.CharData:
			b.Write(t)
		case xml.EndElement:
			return b.String(), nil
		case xml.StartElement:
			return "", fmt.Errorf("<%s> inside a leaf value", t.Name.Local)
		}
	}
}

func parseValue(d *xml.Decoder, se *xml.StartElement, depth int) (plistValue, error) {
	if se == nil {
		return plistValue{}, errors.New("missing value")
	}
	if depth > maxPlistDepth {
		return plistValue{}, errors.New("nested too deep")
	}
	switch se.Name.Local {
	case "string":
		s, err := text(d)
		return plistValue{String: &s}, err
	case "integer":
		s, err := text(d)
		if err != nil {
			return plistValue{}, err
		}
		var n int64
		if _, err := fmt.Sscan(strings.TrimSpace(s), &n); err != nil {
			return plistValue{}, fmt.Errorf("integer %q: %w", s, err)
		}
		return plistValue{Integer: &n}, nil
	case "true", "false":
		b := se.Name.Local == "true"
		if err := expectEnd(d, se.Name.Local); err != nil {
			return plistValue{}, err
		}
		return plistValue{Bool: &b}, nil
	case "array":
		v := plistValue{isArray: true}
		for {
			next, err := nextStart(d)
			if err != nil {
				return plistValue{}, err
			}
			if next == nil {
				return v, nil
			}
			elem, err := parseValue(d, next, depth+1)
			if err != nil {
				return plistValue{}, err
			}
			v.Array = append(v.Array, elem)
		}
	case "dict":
		v := plistValue{Dict: map[string]plistValue{}}
		for {
			k, err := nextStart(d)
			if err != nil {
				return plistValue{}, err
			}
			if k == nil {
				return v, nil
			}
			if k.Name.Local != "key" {
				return plistValue{}, fmt.Errorf("<%s> where a <key> belongs", k.Name.Local)
			}
			key, err := text(d)
			if err != nil {
				return plistValue{}, err
			}
			if _, dup := v.Dict[key]; dup {
				return plistValue{}, fmt.Errorf("key %q twice", key)
			}
			vs, err := nextStart(d)
			if err != nil {
				return plistValue{}, err
			}
			elem, err := parseValue(d, vs, depth+1)
			if err != nil {
				return plistValue{}, fmt.Errorf("key %q: %w", key, err)
			}
			v.Dict[key] = elem
		}
	}
	return plistValue{}, fmt.Errorf("unknown plist type <%s>", se.Name.Local)
}

// launchdKeys are the keys of launchd.plist(5) the job may use, with the
// type each must have.
var launchdKeys = map[string]string{
	"Label": "string", "ProgramArguments": "array", "RunAtLoad": "bool",
	"KeepAlive": "dict", "ThrottleInterval": "integer", "ExitTimeOut": "integer",
	"Umask": "integer", "StandardErrorPath": "string", "StandardOutPath": "string",
}

func typeOf(v plistValue) string {
	switch {
	case v.String != nil:
		return "string"
	case v.Integer != nil:
		return "integer"
	case v.Bool != nil:
		return "bool"
	case v.Dict != nil:
		return "dict"
	case v.isArray:
		return "array"
	}
	return "none"
}

func TestLaunchdPlist(t *testing.T) {
	f, err := os.Open(plistPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	job, err := parsePlist(f)
	if err != nil {
		t.Fatalf("%s: %v", plistPath, err)
	}
	if job.Dict == nil {
		t.Fatalf("top level is %s, want a dict", typeOf(job))
	}
	for k, v := range job.Dict {
		want, ok := launchdKeys[k]
		if !ok {
			t.Errorf("key %q is not one this job should use", k)
		} else if got := typeOf(v); got != want {
			t.Errorf("key %q: %s, want %s", k, got, want)
		}
	}
	for _, k := range []string{"Label", "ProgramArguments", "RunAtLoad", "KeepAlive"} {
		if _, ok := job.Dict[k]; !ok {
			t.Errorf("key %q missing", k)
		}
	}
	if l := job.Dict["Label"].String; l == nil || *l != "net.current-vpn.currentd" {
		t.Errorf("Label %v", l)
	}
	var args []string
	for _, a := range job.Dict["ProgramArguments"].Array {
		if a.String == nil {
			t.Fatalf("ProgramArguments holds a %s", typeOf(a))
		}
		args = append(args, *a.String)
	}
	if len(args) < 3 || args[0] != installedDaemon || args[1] != "-c" || !strings.HasPrefix(args[2], "/usr/local/etc/current/") {
		t.Errorf("ProgramArguments %q, want %s -c /usr/local/etc/current/NAME.toml ...", args, installedDaemon)
	}
	if b := job.Dict["RunAtLoad"].Bool; b == nil || !*b {
		t.Error("RunAtLoad is not true")
	}
	// A clean exit (SIGTERM from launchctl bootout) must not be restarted;
	// a crash must.
	ka := job.Dict["KeepAlive"].Dict
	if se := ka["SuccessfulExit"].Bool; se == nil || *se {
		t.Errorf("KeepAlive %v, want SuccessfulExit false", ka)
	}
	if u := job.Dict["Umask"].Integer; u == nil || *u != 0o077 {
		t.Errorf("Umask %v, want 0077 (63)", u)
	}
}

// TestLaunchdPlistPython reads the job with Python's plistlib as well, an
// independent implementation of the format launchd and plutil read.
func TestLaunchdPlistPython(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed; TestLaunchdPlist has checked the file")
	}
	const prog = `import plistlib, sys
job = plistlib.load(open(sys.argv[1], "rb"), fmt=plistlib.FMT_XML)
assert isinstance(job, dict), type(job)
print(job["Label"], job["ProgramArguments"][0], job["RunAtLoad"], job["KeepAlive"])`
	out, err := exec.Command(py, "-c", prog, plistPath).CombinedOutput()
	if err != nil {
		t.Fatalf("plistlib: %v\n%s", err, out)
	}
	want := "net.current-vpn.currentd " + installedDaemon + " True {'SuccessfulExit': False}\n"
	if string(out) != want {
		t.Errorf("plistlib read %q, want %q", out, want)
	}
}

// TestPlistParserRejects checks that the parser above is strict enough
// to be a check at all.
func TestPlistParserRejects(t *testing.T) {
	for name, doc := range map[string]string{
		"not xml":       "plist",
		"other root":    `<dict></dict>`,
		"version":       `<plist version="2.0"><dict/></plist>`,
		"key twice":     `<plist version="1.0"><dict><key>a</key><true/><key>a</key><false/></dict></plist>`,
		"key no value":  `<plist version="1.0"><dict><key>a</key></dict></plist>`,
		"value no key":  `<plist version="1.0"><dict><string>x</string></dict></plist>`,
		"bad integer":   `<plist version="1.0"><integer>x</integer></plist>`,
		"unknown type":  `<plist version="1.0"><data>AA==</data></plist>`,
		"two values":    `<plist version="1.0"><true/><true/></plist>`,
		"unclosed":      `<plist version="1.0"><dict>`,
		"mismatched":    `<plist version="1.0"><dict></array></plist>`,
		"text in dict":  `<plist version="1.0"><dict>hello</dict></plist>`,
		"too deep":      `<plist version="1.0">` + strings.Repeat("<array>", 20) + strings.Repeat("</array>", 20) + `</plist>`,
		"after plist":   `<plist version="1.0"><true/></plist><plist/>`,
		"child of true": `<plist version="1.0"><true><string/></true></plist>`,
	} {
		if _, err := parsePlist(strings.NewReader(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParsePlist(f *testing.F) {
	if b, err := os.ReadFile(plistPath); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`<plist version="1.0"><dict><key>a</key><array><integer>1</integer></array></dict></plist>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parsePlist(strings.NewReader(string(b)))
	})
}

// TestRCScript lints the FreeBSD rc.d script as POSIX sh and checks that
// it runs the installed daemon with the arguments it takes.
func TestRCScript(t *testing.T) {
	b, err := os.ReadFile(rcdPath)
	if err != nil {
		t.Fatal(err)
	}
	script := string(b)
	for _, want := range []string{
		"#!/bin/sh\n", "# PROVIDE: currentd\n", "# KEYWORD: shutdown\n", ". /etc/rc.subr\n",
		`procname="` + installedDaemon + `"`, `rcvar="currentd_enable"`, "$procname -c $currentd_config",
		`run_rc_command "$1"`,
	} {
		if !strings.Contains(script, want) {
			t.Errorf("%s lacks %q", rcdPath, want)
		}
	}
	if fi, err := os.Stat(rcdPath); err != nil || fi.Mode().Perm()&0o111 == 0 {
		t.Errorf("%s is not executable: %v", rcdPath, err)
	}
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Skip("shellcheck is not installed (apt-get install shellcheck; .ci/run installs it)")
	}
	out, err := exec.Command(sc, "-s", "sh", rcdPath).CombinedOutput()
	if err != nil {
		t.Errorf("shellcheck %s: %v\n%s", rcdPath, err, out)
	}
}
