package config

import (
	"strconv"
	"strings"
)

// Error is one problem in a configuration, located as precisely as the
// source allows: "current0.toml:12: peer[1].allowed_ips: ...".
type Error struct {
	File string // the name given to Parse or Load; "" from Validate
	Line int    // 1-based; 0 when unknown (Validate, or a missing table)
	Key  string // the key at fault, e.g. "peer[1].allowed_ips"; "" for syntax errors
	Msg  string
	Err  error // the underlying error, if any (e.g. from reading the key file)

	// at is the most precise place to look for a line, e.g. the element
	// "peer[1].allowed_ips[2]" of a multi-line array, while Key names the
	// key a user knows.
	at keyPath
}

func newError(key, at keyPath, msg string, err error) *Error {
	return &Error{Key: key.String(), Msg: msg, Err: err, at: at}
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// ErrorList is every problem found in a configuration, in file order.
// Reporting them all at once saves an edit-and-retry round per mistake.
type ErrorList []*Error

func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap lets errors.As find each *Error.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// pathElem is a table key, or an array index when idx >= 0.
type pathElem struct {
	name string
	idx  int
}

// keyPath is a position in the document, such as peer[1].allowed_ips[0].
type keyPath []pathElem

func (p keyPath) key(name string) keyPath {
	return append(p[:len(p):len(p)], pathElem{name: name, idx: -1})
}

func (p keyPath) index(i int) keyPath {
	return append(p[:len(p):len(p)], pathElem{idx: i})
}

// String formats the path as errors show it. Keys that are not bare TOML
// keys are quoted, so a key named "a.b" cannot be mistaken for a.b.
func (p keyPath) String() string {
	var b strings.Builder
	for i, e := range p {
		if e.idx >= 0 {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(e.idx))
			b.WriteByte(']')
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(quoteKey(e.name))
	}
	return b.String()
}

func quoteKey(k string) string {
	if k == "" {
		return `""`
	}
	for i := 0; i < len(k); i++ {
		if !isBareKeyChar(k[i]) {
			return strconv.Quote(k)
		}
	}
	return k
}

func isBareKeyChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}
