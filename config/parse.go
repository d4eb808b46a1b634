package config

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// maxConfigSize bounds what Load reads; real files are a few kilobytes,
// even with hundreds of ML-DSA peer keys.
const maxConfigSize = 16 << 20

// Options adjust Load.
type Options struct {
	// SkipKeyFile leaves interface.private_key_file unread, for checking a
	// file on a machine other than the one it is for (and for tests).
	SkipKeyFile bool
}

// Load reads, parses and validates the configuration file at path, then
// loads the private key file it names and checks it against the
// configuration: its mode, its suite, and that no peer has our own key.
// Problems in the file, the key file included, come back as an ErrorList
// of located *Error; a configuration file that cannot be read gives the
// error from os.
func Load(path string) (*Config, error) {
	return LoadWithOptions(path, Options{})
}

// LoadWithOptions is Load with options.
func LoadWithOptions(path string, opts Options) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	c, pos, err := parse(data, path)
	if err != nil {
		return nil, err
	}
	if opts.SkipKeyFile {
		return c, nil
	}
	at := keyPath{}.key("interface").key("private_key_file")
	k, err := LoadPrivateKeyFile(c.Interface.PrivateKeyFile)
	if err != nil {
		e := newError(at, at, err.Error(), err)
		return nil, locate(ErrorList{e}, path, pos)
	}
	c.Interface.PrivateKey = k
	if errs := c.validate(); len(errs) > 0 {
		k.Zero()
		return nil, locate(errs, path, pos)
	}
	return c, nil
}

func readFile(path string) ([]byte, error) {
	f, err := openNonBlocking(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if fi.Size() > maxConfigSize {
		return nil, fmt.Errorf("%s: larger than %s; not a configuration file", path, FormatSize(maxConfigSize))
	}
	return io.ReadAll(io.LimitReader(f, maxConfigSize))
}

// Parse parses and validates a configuration. name is used in error
// messages only (usually the file name). Parse does not read the private
// key file; Load does.
func Parse(data []byte, name string) (*Config, error) {
	c, _, err := parse(data, name)
	return c, err
}

func parse(data []byte, name string) (*Config, positions, error) {
	var doc map[string]any
	if _, err := toml.Decode(string(data), &doc); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, nil, ErrorList{{File: name, Line: pe.Position.Line, Msg: pe.Message, Err: err}}
		}
		return nil, nil, ErrorList{{File: name, Msg: err.Error(), Err: err}}
	}
	pos := scanPositions(string(data))
	d := &decoder{failed: map[string]bool{}}
	c := d.document(doc)
	errs := d.errs
	for _, e := range c.validate() {
		// A key that failed to decode holds a default or zero value; the
		// validator's opinion of that would only be noise.
		if !d.failedWithin(e.at) {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		return nil, pos, locate(errs, name, pos)
	}
	return c, pos, nil
}

// locate fills in file and line and sorts the errors into file order;
// errors whose line is unknown (missing keys) come last.
func locate(errs ErrorList, name string, pos positions) ErrorList {
	for _, e := range errs {
		e.File = name
		if e.Line == 0 {
			e.Line = pos.line(e.at)
		}
	}
	sort.SliceStable(errs, func(i, j int) bool {
		li, lj := errs[i].Line, errs[j].Line
		if li == 0 || lj == 0 {
			return li != 0 && lj == 0
		}
		return li < lj
	})
	return errs
}

// decoder turns the generic TOML tree into a Config, reporting type and
// syntax errors of values; range and consistency checks are Validate's.
type decoder struct {
	errs   ErrorList
	failed map[string]bool // Key strings of values that did not decode
}

func (d *decoder) fail(key, at keyPath, format string, args ...any) {
	e := newError(key, at, fmt.Sprintf(format, args...), nil)
	d.failed[e.Key] = true
	d.errs = append(d.errs, e)
}

// failedWithin reports whether p or a table containing it failed to decode.
func (d *decoder) failedWithin(p keyPath) bool {
	for n := len(p); n > 0; n-- {
		if d.failed[p[:n].String()] {
			return true
		}
	}
	return false
}

type field struct {
	name string
	set  func(v any, at keyPath)
}

// fields decodes table m against a schema; every key not in it is an
// error, because a misspelt key silently ignored is a setting silently not
// applied.
func (d *decoder) fields(m map[string]any, at keyPath, schema []field) {
	for _, k := range sortedKeys(m) {
		i := slices.IndexFunc(schema, func(f field) bool { return f.name == k })
		if i < 0 {
			d.unknown(at.key(k), k, schema)
			continue
		}
		schema[i].set(m[k], at.key(k))
	}
}

func (d *decoder) unknown(at keyPath, k string, schema []field) {
	names := make([]string, len(schema))
	for i, f := range schema {
		names[i] = f.name
	}
	msg := "unknown key"
	if s := suggest(k, names); s != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", s)
	} else {
		msg += fmt.Sprintf(" (known keys here: %s)", strings.Join(names, ", "))
	}
	d.fail(at, at, "%s", msg)
}

func (d *decoder) document(doc map[string]any) *Config {
	c := &Config{Interface: Interface{
		Name:            DefaultInterfaceName,
		ListenPort:      DefaultListenPort,
		Suite:           DefaultSuite,
		StateDir:        DefaultStateDir,
		RekeyInterval:   DefaultRekeyInterval,
		RekeyBytes:      DefaultRekeyBytes,
		DeadPeerTimeout: DefaultDeadPeerTimeout,
		HookTimeout:     DefaultHookTimeout,
	}}
	d.fields(doc, nil, []field{
		{"interface", func(v any, at keyPath) {
			m, ok := v.(map[string]any)
			if !ok {
				d.fail(at, at, "must be a table ([interface]), not %s", typeName(v))
				return
			}
			d.iface(m, at, &c.Interface)
		}},
		{"peer", func(v any, at keyPath) {
			var tables []map[string]any
			switch v := v.(type) {
			case []map[string]any:
				tables = v
			case []any:
				for i, e := range v {
					m, ok := e.(map[string]any)
					if !ok {
						d.fail(at, at.index(i), "each peer must be a table ([[peer]]), not %s", typeName(e))
						return
					}
					tables = append(tables, m)
				}
			default:
				d.fail(at, at, "must be an array of tables ([[peer]]), not %s", typeName(v))
				return
			}
			if len(tables) == 0 {
				return
			}
			c.Peers = make([]Peer, len(tables))
			for i, m := range tables {
				d.peer(m, at.index(i), &c.Peers[i])
			}
		}},
	})
	return c
}

func (d *decoder) iface(m map[string]any, at keyPath, ifc *Interface) {
	d.fields(m, at, append([]field{
		{"name", func(v any, at keyPath) { d.str(v, at, &ifc.Name) }},
		{"private_key_file", func(v any, at keyPath) { d.str(v, at, &ifc.PrivateKeyFile) }},
		{"listen_port", func(v any, at keyPath) {
			var n int64
			if d.integer(v, at, &n) {
				if n < 0 || n > 65535 {
					d.fail(at, at, "%d is not a port: use 1..65535, or 0 for one the kernel picks", n)
					return
				}
				ifc.ListenPort = uint16(n)
			}
		}},
		{"addresses", func(v any, at keyPath) {
			ifc.Addresses = d.prefixes(v, at, "10.99.0.1/24")
		}},
		{"mtu", func(v any, at keyPath) {
			var n int64
			if d.integer(v, at, &n) {
				if n < 0 || n > MaxMTU {
					d.fail(at, at, "%d is out of range: use 0 (automatic) or %d..%d", n, MinMTU, MaxMTU)
					return
				}
				ifc.MTU = int(n)
			}
		}},
		{"suite", func(v any, at keyPath) {
			var s string
			if d.str(v, at, &s) {
				id, err := SuiteByName(s)
				if err != nil {
					d.fail(at, at, "%v", err)
					return
				}
				ifc.Suite = id
			}
		}},
		{"state_dir", func(v any, at keyPath) { d.str(v, at, &ifc.StateDir) }},
		{"routes", func(v any, at keyPath) {
			b, ok := v.(bool)
			if !ok {
				d.fail(at, at, "must be true or false, not %s", typeName(v))
				return
			}
			ifc.ManualRoutes = !b
		}},
		{"fwmark", func(v any, at keyPath) {
			var n int64
			if d.integer(v, at, &n) {
				if n < 0 || n > math.MaxUint32 {
					d.fail(at, at, "%d is out of range: use 1..%d, or 0 for the default (51900)", n, uint32(math.MaxUint32))
					return
				}
				ifc.Fwmark = uint32(n)
			}
		}},
		{"rekey_interval", func(v any, at keyPath) { d.duration(v, at, &ifc.RekeyInterval) }},
		{"dead_peer_timeout", func(v any, at keyPath) { d.duration(v, at, &ifc.DeadPeerTimeout) }},
		{"rekey_bytes", func(v any, at keyPath) {
			switch x := v.(type) {
			case int64:
				if x < 0 {
					d.fail(at, at, "%d is negative", x)
					return
				}
				ifc.RekeyBytes = uint64(x)
			case string:
				n, err := ParseSize(x)
				if err != nil {
					d.fail(at, at, "%v", err)
					return
				}
				ifc.RekeyBytes = n
			default:
				d.fail(at, at, "must be a size such as \"1GiB\", not %s", typeName(v))
			}
		}},
	}, d.hostFields(ifc)...))
}

func (d *decoder) peer(m map[string]any, at keyPath, p *Peer) {
	d.fields(m, at, []field{
		{"name", func(v any, at keyPath) { d.str(v, at, &p.Name) }},
		{"public_key", func(v any, at keyPath) {
			var s string
			if d.str(v, at, &s) {
				k, err := ParsePublicKey(s)
				if err != nil {
					d.fail(at, at, "%v", err)
					return
				}
				p.PublicKey = k
			}
		}},
		{"endpoint", func(v any, at keyPath) {
			var s string
			if d.str(v, at, &s) {
				e, err := ParseEndpoint(s)
				if err != nil {
					d.fail(at, at, "%v", err)
					return
				}
				p.Endpoint = e
			}
		}},
		{"allowed_ips", func(v any, at keyPath) {
			p.AllowedIPs = d.prefixes(v, at, "10.99.0.0/24")
		}},
		{"persistent_keepalive", func(v any, at keyPath) {
			if n, ok := v.(int64); ok && n == 0 {
				return // 0 means off, and reads naturally unquoted
			}
			d.duration(v, at, &p.PersistentKeepalive)
		}},
		{"transport", func(v any, at keyPath) {
			var s string
			if d.str(v, at, &s) {
				t, err := ParseTransport(s)
				if err != nil {
					d.fail(at, at, "%v", err)
					return
				}
				p.Transport = t
			}
		}},
	})
}

func (d *decoder) str(v any, at keyPath, dst *string) bool {
	s, ok := v.(string)
	if !ok {
		d.fail(at, at, "must be a string, not %s", typeName(v))
		return false
	}
	*dst = s
	return true
}

func (d *decoder) integer(v any, at keyPath, dst *int64) bool {
	n, ok := v.(int64)
	if !ok {
		d.fail(at, at, "must be an integer, not %s", typeName(v))
		return false
	}
	*dst = n
	return true
}

func (d *decoder) duration(v any, at keyPath, dst *time.Duration) {
	s, ok := v.(string)
	if !ok {
		if n, isInt := v.(int64); isInt {
			d.fail(at, at, "must be a duration string with a unit, such as \"%ds\", not a bare number", n)
			return
		}
		d.fail(at, at, "must be a duration string such as \"90s\", not %s", typeName(v))
		return
	}
	dur, err := parseDuration(s)
	if err != nil {
		d.fail(at, at, "%v", err)
		return
	}
	*dst = dur
}

// prefixes decodes an array of prefixes, reporting each bad element at its
// own line. A bare address is refused rather than taken as a host route:
// one spelling per value keeps files diffable and comparable.
func (d *decoder) prefixes(v any, at keyPath, example string) []netip.Prefix {
	arr, ok := v.([]any)
	if !ok {
		if _, isStr := v.(string); isStr {
			d.fail(at, at, "must be an array of strings, e.g. [%q]", v)
			return nil
		}
		d.fail(at, at, "must be an array of strings, not %s", typeName(v))
		return nil
	}
	out := make([]netip.Prefix, 0, len(arr))
	bad := false
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			d.fail(at, at.index(i), "element %d must be a string, not %s", i, typeName(e))
			bad = true
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			if a, aerr := netip.ParseAddr(s); aerr == nil && a.Zone() == "" {
				d.fail(at, at.index(i), "%q has no prefix length (did you mean %s/%d?)", s, s, a.BitLen())
			} else {
				d.fail(at, at.index(i), "%q is not an address with a prefix length, such as %q", s, example)
			}
			bad = true
			continue
		}
		out = append(out, p)
	}
	if bad || len(out) == 0 {
		return nil // an empty list is an absent one, so Marshal can omit it
	}
	return out
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a date-time"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("a %T", v)
}

func sortedKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// suggest returns the known name closest to k if it is close enough to be
// a typo ("listen-port", "allowedips", "AllowedIPs").
func suggest(k string, known []string) string {
	norm := func(s string) string {
		return strings.ReplaceAll(strings.ReplaceAll(strings.ToLower(s), "-", ""), "_", "")
	}
	best, bestDist := "", math.MaxInt
	for _, n := range known {
		dist := editDistance(norm(k), norm(n))
		if dist < bestDist {
			best, bestDist = n, dist
		}
	}
	if bestDist <= 2 && bestDist < len(norm(k)) {
		return best
	}
	return ""
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return math.MaxInt // not a typo of a schema key; skip the quadratic work
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
