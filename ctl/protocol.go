package ctl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/current-vpn/current/config"
)

// ProtocolVersion is the only version this package speaks. See docs/ctl.md
// for the rule: additions (operations, optional request fields, response
// fields) keep the version; anything an existing client could misread
// bumps it.
const ProtocolVersion = 1

// MaxLineSize bounds one request or response line, newline included. The
// largest real request (peer.add with many prefixes) is a few KiB; the bound
// only keeps a confused or hostile client from making the daemon buffer
// without limit.
const MaxLineSize = 64 << 10

// maxResponseSize bounds what the client reads back: a show of thousands
// of peers is large but legitimate, a runaway stream is not.
const maxResponseSize = 64 << 20

// maxIDLen bounds the request id, which is echoed back and logged.
const maxIDLen = 64

// Operation names.
const (
	OpShow       = "show"
	OpPeerAdd    = "peer.add"
	OpPeerRemove = "peer.remove"
	OpPeerUpdate = "peer.update"
	OpRekey      = "rekey"
	OpSet        = "set"
	OpMetrics    = "metrics"
	OpVersion    = "version"
)

// Ops lists every operation, in documentation order.
var Ops = []string{OpShow, OpPeerAdd, OpPeerRemove, OpPeerUpdate, OpRekey, OpSet, OpMetrics, OpVersion}

// Request is one line from a client.
type Request struct {
	Version int    `json:"version"`
	ID      string `json:"id,omitempty"`
	Op      string `json:"op"`
	// Params is the operation's parameter object, decoded strictly by the
	// server once the operation is known.
	Params json.RawMessage `json:"params,omitempty"`
}

// Response is one line to a client: exactly one of Result and Error is
// set, as OK says.
type Response struct {
	Version int             `json:"version"`
	ID      string          `json:"id,omitempty"`
	OK      bool            `json:"ok"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *Error          `json:"error,omitempty"`
}

// DecodeRequest parses one request line (without or with its trailing
// newline). It is strict: one JSON object, exact field names (encoding/json
// alone would accept "OP" for "op"), no duplicate keys, no trailing data, a
// known version and a well-formed id. Operation names and parameters are
// checked later, by the server, because their errors deserve their own
// codes. Every error is an *Error.
func DecodeRequest(line []byte) (*Request, error) {
	if len(line) > MaxLineSize {
		return nil, Errorf(CodeTooLarge, "request is longer than %d bytes", MaxLineSize)
	}
	line = bytes.TrimRight(line, "\r\n")
	var req Request
	if err := decodeStrict(line, &req); err != nil {
		return nil, err
	}
	if req.Version != ProtocolVersion {
		return &req, Errorf(CodeUnsupportedVersion, "protocol version %d is not supported (this daemon speaks version %d)", req.Version, ProtocolVersion)
	}
	if len(req.ID) > maxIDLen {
		return &req, Errorf(CodeBadRequest, "id is longer than %d bytes", maxIDLen)
	}
	for _, c := range []byte(req.ID) {
		if c < 0x20 || c >= 0x7f {
			return &req, Errorf(CodeBadRequest, "id must be printable ASCII")
		}
	}
	if req.Op == "" {
		return &req, Errorf(CodeBadRequest, "missing op")
	}
	return &req, nil
}

// DecodeParams decodes an operation's parameters as strictly as
// DecodeRequest decodes the envelope. Absent or null params decode as the
// zero value: every operation's parameters are optional or checked after.
func DecodeParams(raw json.RawMessage, v any) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	return decodeStrict(raw, v)
}

// decodeStrict decodes one JSON object into v, which must point to a
// struct, and rejects anything encoding/json would tolerate.
func decodeStrict(data []byte, v any) error {
	// encoding/json would replace invalid UTF-8 with U+FFFD, so that a
	// name could decode to something other than what was sent.
	if !utf8.Valid(data) {
		return Errorf(CodeBadRequest, "not valid UTF-8")
	}
	if !json.Valid(data) {
		return Errorf(CodeBadRequest, "not valid JSON")
	}
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return Errorf(CodeBadRequest, "not a JSON object")
	}
	if err := checkKeys(data, reflect.TypeOf(v).Elem(), ""); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return Errorf(CodeBadRequest, "%s", jsonErrorText(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return Errorf(CodeBadRequest, "unexpected data after the JSON object")
	}
	return nil
}

// jsonErrorText makes encoding/json's messages about Go types read as
// messages about the JSON the client sent.
func jsonErrorText(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("field %q: JSON %s is the wrong type", te.Field, te.Value)
		}
		return fmt.Sprintf("JSON %s is the wrong type", te.Value)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// checkKeys walks a valid JSON value alongside the Go type it will decode
// into and rejects keys that are not exactly a field's JSON name, and
// duplicate keys, at every depth. encoding/json matches names without
// regard to case and lets the last duplicate win, either of which would
// let a request mean something other than what it says.
func checkKeys(data []byte, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil
	}
	switch {
	case data[0] == '{' && t.Kind() == reflect.Struct && !isTextType(t):
		fields := jsonFields(t)
		var obj []struct {
			k string
			v json.RawMessage
		}
		if err := forEachMember(data, func(k string, v json.RawMessage) {
			obj = append(obj, struct {
				k string
				v json.RawMessage
			}{k, v})
		}); err != nil {
			return Errorf(CodeBadRequest, "%s", jsonErrorText(err))
		}
		seen := map[string]bool{}
		for _, m := range obj {
			name := joinPath(path, m.k)
			if seen[m.k] {
				return Errorf(CodeBadRequest, "duplicate field %q", name)
			}
			seen[m.k] = true
			ft, ok := fields[m.k]
			if !ok {
				return Errorf(CodeBadRequest, "unknown field %q", name)
			}
			if err := checkKeys(m.v, ft, name); err != nil {
				return err
			}
		}
	case data[0] == '[' && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
		var elems []json.RawMessage
		if err := json.Unmarshal(data, &elems); err != nil {
			return Errorf(CodeBadRequest, "%s", jsonErrorText(err))
		}
		for i, e := range elems {
			if err := checkKeys(e, t.Elem(), path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	}
	// Anything else is a scalar or a type mismatch, which Decode reports.
	return nil
}

func joinPath(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

var textUnmarshaler = reflect.TypeFor[interface{ UnmarshalText([]byte) error }]()

func isTextType(t reflect.Type) bool {
	return reflect.PointerTo(t).Implements(textUnmarshaler)
}

// jsonFields maps a struct's exact JSON names to field types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
	return m
}

// forEachMember calls f for each member of a JSON object, in order and
// with duplicates kept, which decoding into a map would lose.
func forEachMember(data []byte, f func(k string, v json.RawMessage)) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // '{'
		return err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		k, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return err
		}
		f(k, v)
	}
	return nil
}

// EncodeResponse returns the response line, newline included.
func EncodeResponse(r *Response) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Seconds is a duration that JSON carries as a number of seconds, the unit
// people and scripts read without a parser for Go's duration syntax.
type Seconds time.Duration

// MarshalJSON writes whole seconds as an integer and anything finer as a
// decimal fraction.
func (s Seconds) MarshalJSON() ([]byte, error) {
	d := time.Duration(s)
	if d%time.Second == 0 {
		return strconv.AppendInt(nil, int64(d/time.Second), 10), nil
	}
	return strconv.AppendFloat(nil, d.Seconds(), 'f', -1, 64), nil
}

// UnmarshalJSON reads a number of seconds, rejecting values a Duration
// cannot hold.
func (s *Seconds) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("%s is not a number of seconds", b)
	}
	if f < 0 || f > float64(1<<63-1)/float64(time.Second) {
		return fmt.Errorf("%s seconds is out of range", b)
	}
	*s = Seconds(f * float64(time.Second))
	return nil
}

// Duration returns s as a time.Duration.
func (s Seconds) Duration() time.Duration { return time.Duration(s) }

// PeerRef names a peer on the command line and in requests: by its name
// from the configuration or by its public key. The two cannot be confused,
// because a public key always contains ':' and a peer name never does.
type PeerRef struct {
	Name string
	Key  config.PublicKey
}

// ParsePeerRef parses a peer name or public key.
func ParsePeerRef(s string) (PeerRef, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return PeerRef{}, Errorf(CodeBadRequest, "empty peer reference")
	case strings.HasPrefix(strings.ToLower(s), config.PrivateKeyPrefix):
		// Never echoed: the reply may end up on a terminal or in a log.
		return PeerRef{}, Errorf(CodeBadRequest, "peer: that is a private key, not a peer reference (give the public key, from currentctl pubkey)")
	case strings.Contains(s, ":"):
		k, err := config.ParsePublicKey(s)
		if err != nil {
			return PeerRef{}, Errorf(CodeBadRequest, "peer %q: %v", s, err)
		}
		return PeerRef{Key: k}, nil
	case len(s) > config.MaxPeerNameLen:
		return PeerRef{}, Errorf(CodeBadRequest, "peer name is longer than %d bytes", config.MaxPeerNameLen)
	}
	return PeerRef{Name: s}, nil
}

// IsZero reports whether r refers to no peer.
func (r PeerRef) IsZero() bool { return r.Name == "" && r.Key.IsZero() }

// Matches reports whether r refers to the peer with this name and key.
func (r PeerRef) Matches(name string, key config.PublicKey) bool {
	if r.Name != "" {
		return r.Name == name
	}
	return !r.Key.IsZero() && r.Key.Equal(key)
}

// String returns the name or key as the user wrote it.
func (r PeerRef) String() string {
	if r.Name != "" {
		return r.Name
	}
	return r.Key.String()
}

// PeerSpec is a peer as peer.add carries it: config.Peer in the
// configuration file's text forms.
type PeerSpec struct {
	Name                string   `json:"name"`
	PublicKey           string   `json:"public_key"`
	Endpoint            string   `json:"endpoint,omitempty"`
	AllowedIPs          []string `json:"allowed_ips"`
	PersistentKeepalive Seconds  `json:"persistent_keepalive_seconds,omitempty"`
	Transport           string   `json:"transport,omitempty"`
}

// Peer parses the spec into a config.Peer. Syntax is checked here; what
// depends on the other peers (unique name, key and prefixes) and on the
// interface (the key's algorithm against the suite) is the Backend's to
// check, with config.Validate on the configuration it would run.
func (s PeerSpec) Peer() (config.Peer, error) {
	var p config.Peer
	if s.Name == "" {
		return p, Errorf(CodeBadRequest, "peer name is missing")
	}
	if strings.Contains(s.Name, ":") {
		return p, Errorf(CodeBadRequest, "peer name %q contains ':', which only public keys may", s.Name)
	}
	p.Name = s.Name
	if s.PublicKey == "" {
		return p, Errorf(CodeBadRequest, "public_key is missing")
	}
	k, err := config.ParsePublicKey(s.PublicKey)
	if err != nil {
		return p, Errorf(CodeBadRequest, "public_key: %v", err)
	}
	p.PublicKey = k
	if s.Endpoint != "" {
		if p.Endpoint, err = config.ParseEndpoint(s.Endpoint); err != nil {
			return p, Errorf(CodeBadRequest, "endpoint: %v", err)
		}
	}
	if p.AllowedIPs, err = parsePrefixes(s.AllowedIPs); err != nil {
		return p, err
	}
	if err := checkKeepalive(s.PersistentKeepalive.Duration()); err != nil {
		return p, err
	}
	p.PersistentKeepalive = s.PersistentKeepalive.Duration()
	if s.Transport != "" {
		if p.Transport, err = config.ParseTransport(s.Transport); err != nil {
			return p, Errorf(CodeBadRequest, "transport: %v", err)
		}
	} else {
		p.Transport = config.DefaultTransport
	}
	return p, nil
}

func parsePrefixes(ss []string) ([]netip.Prefix, error) {
	if len(ss) == 0 {
		return nil, Errorf(CodeBadRequest, "allowed_ips is empty: a peer needs at least one prefix")
	}
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, Errorf(CodeBadRequest, "allowed_ips: %q is not a prefix (e.g. 10.0.0.2/32)", s)
		}
		if m := p.Masked(); m != p {
			return nil, Errorf(CodeBadRequest, "allowed_ips: %q has host bits set (did you mean %s?)", s, m)
		}
		out = append(out, p)
	}
	return out, nil
}

func checkKeepalive(d time.Duration) error {
	if d != 0 && (d < config.MinKeepalive || d > config.MaxKeepalive) {
		return Errorf(CodeBadRequest, "persistent keepalive %s is out of range: use 0 (off) or %s..%s", d, config.MinKeepalive, config.MaxKeepalive)
	}
	return nil
}

// Parameters of each operation. Pointers mark optional fields whose zero
// value means something ("" endpoint clears it, 0 keepalive turns it off).

// ShowParams selects one peer, or every peer when Peer is empty.
type ShowParams struct {
	Peer string `json:"peer,omitempty"`
}

// PeerAddParams are peer.add's parameters.
type PeerAddParams struct {
	Peer PeerSpec `json:"peer"`
	Save bool     `json:"save,omitempty"`
}

// PeerRemoveParams are peer.remove's parameters.
type PeerRemoveParams struct {
	Peer string `json:"peer"`
	Save bool   `json:"save,omitempty"`
}

// PeerUpdateParams are peer.update's parameters: absent fields are left
// as they are.
type PeerUpdateParams struct {
	Peer                string   `json:"peer"`
	Endpoint            *string  `json:"endpoint,omitempty"`
	AllowedIPs          []string `json:"allowed_ips,omitempty"`
	PersistentKeepalive *Seconds `json:"persistent_keepalive_seconds,omitempty"`
	Transport           *string  `json:"transport,omitempty"`
	Save                bool     `json:"save,omitempty"`
}

// RekeyParams name one peer, or all of them; Timeout bounds the wait for
// the new epochs (DefaultRekeyTimeout when zero, at most MaxRekeyTimeout).
type RekeyParams struct {
	Peer    string  `json:"peer,omitempty"`
	All     bool    `json:"all,omitempty"`
	Timeout Seconds `json:"timeout_seconds,omitempty"`
}

// SetParams change the rekey policy; absent fields are left as they are.
type SetParams struct {
	RekeyInterval *Seconds `json:"rekey_interval_seconds,omitempty"`
	RekeyBytes    *uint64  `json:"rekey_bytes,omitempty"`
	Save          bool     `json:"save,omitempty"`
}

// Rekey wait bounds.
const (
	DefaultRekeyTimeout = 30 * time.Second
	MaxRekeyTimeout     = 5 * time.Minute
)

// Results of the operations that are not Status or VersionInfo.

// RekeyReply is rekey's result.
type RekeyReply struct {
	Results []RekeyOutcome `json:"results"`
}

// RekeyOutcome is one peer's part of a rekey: its new epoch, or why there
// is none.
type RekeyOutcome struct {
	Peer      string `json:"peer"`
	PublicKey string `json:"public_key"`
	Epoch     uint64 `json:"epoch"`
	Error     *Error `json:"error"`
}

// PolicyReply is set's result: the policy now in force.
type PolicyReply struct {
	RekeyInterval Seconds `json:"rekey_interval_seconds"`
	RekeyBytes    uint64  `json:"rekey_bytes"`
}

// MetricsReply is metrics's result: Prometheus text exposition format
// 0.0.4, carried in JSON so that the framing stays one line per response.
type MetricsReply struct {
	Text string `json:"text"`
}

// Empty is the result of operations that only succeed or fail.
type Empty struct{}
