package ctl

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/current-vpn/current/config"
)

// Bounds of what one log line carries of a request. A request may be 64
// KiB, and failures are logged; the start of the parameters and of the
// error is what tells an operator what was attempted.
const (
	maxLoggedParams = 256
	maxLoggedError  = 1024
)

// redacted stands in the log for a value that might be secret.
const redacted = "[redacted]"

// paramTypes are the parameter types of the operations whose parameters
// are logged (the mutating ones).
var paramTypes = map[string]reflect.Type{
	OpPeerAdd:    reflect.TypeFor[PeerAddParams](),
	OpPeerRemove: reflect.TypeFor[PeerRemoveParams](),
	OpPeerUpdate: reflect.TypeFor[PeerUpdateParams](),
	OpRekey:      reflect.TypeFor[RekeyParams](),
	OpSet:        reflect.TypeFor[SetParams](),
}

// logParams renders an operation's parameters for the log: compact JSON in
// which only what the operation's schema makes public survives, cut to
// maxLoggedParams bytes.
//
// No operation takes a secret, but a client can send one by mistake: a
// private key pasted as a peer's public key or reference, or a field the
// schema does not have ("private_key"), which is refused and so logged at
// WARN. Values of unknown fields, values of the wrong type and public keys
// that do not parse are therefore replaced by [redacted], and so is any
// text that contains the private key prefix, wherever it is.
func logParams(op string, raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	t, ok := paramTypes[op]
	if !ok {
		return redacted
	}
	var b bytes.Buffer
	renderValue(&b, raw, t, "")
	return truncate(b.String(), maxLoggedParams)
}

// logError is an error's text for the log: redacted as logParams does
// (messages quote what the client sent) and cut to maxLoggedError bytes.
func logError(err error) string {
	return truncate(redactText(err.Error()), maxLoggedError)
}

// renderValue writes data, a valid JSON value that should decode into t,
// the value of the field named field. Recursion follows t, so its depth
// is that of the parameter types, whatever the client nests.
func renderValue(b *bytes.Buffer, data []byte, t reflect.Type, field string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		writeString(b, redacted)
		return
	}
	switch {
	case data[0] == '{' && t.Kind() == reflect.Struct && !isTextType(t):
		fields := jsonFields(t)
		start := b.Len()
		b.WriteByte('{')
		n := 0
		err := forEachMember(data, func(k string, v json.RawMessage) {
			if n > 0 {
				b.WriteByte(',')
			}
			n++
			writeString(b, k)
			b.WriteByte(':')
			if ft, ok := fields[k]; ok {
				renderValue(b, v, ft, k)
			} else {
				writeString(b, redacted)
			}
		})
		if err != nil {
			b.Truncate(start)
			writeString(b, redacted)
			return
		}
		b.WriteByte('}')
	case data[0] == '[' && t.Kind() == reflect.Slice:
		var elems []json.RawMessage
		if err := json.Unmarshal(data, &elems); err != nil {
			writeString(b, redacted)
			return
		}
		b.WriteByte('[')
		for i, e := range elems {
			if i > 0 {
				b.WriteByte(',')
			}
			renderValue(b, e, t.Elem(), field)
		}
		b.WriteByte(']')
	case data[0] == '"' && t.Kind() == reflect.String:
		var s string
		if err := json.Unmarshal(data, &s); err != nil || !publicText(field, s) {
			s = redacted
		}
		writeString(b, s)
	case data[0] == '"' || data[0] == '{' || data[0] == '[':
		// The wrong type: whatever it holds was not meant for this field.
		writeString(b, redacted)
	default:
		// Numbers, true, false, null: never secret, and short.
		var c bytes.Buffer
		if json.Compact(&c, data) != nil {
			writeString(b, redacted)
			return
		}
		b.Write(c.Bytes())
	}
}

// publicText reports whether s, the value of field, may be logged. A
// public key field must hold a public key; a peer reference with ':' is a
// public key too (names have none). Anything else is checked for the
// private key prefix by redactText, when the whole line is.
func publicText(field, s string) bool {
	switch {
	case hasPrivateKeyPrefix(s):
		return false
	case field == "public_key", field == "peer" && strings.Contains(s, ":"):
		_, err := config.ParsePublicKey(s)
		return err == nil
	}
	return true
}

// writeString writes s as a JSON string, with any private key in it
// redacted.
func writeString(b *bytes.Buffer, s string) {
	enc, _ := json.Marshal(redactText(s)) // a string always marshals
	b.Write(enc)
}

// redactText replaces each private key in s, from its prefix (in any case)
// to the end of the key's characters, with [redacted].
func redactText(s string) string {
	if !hasPrivateKeyPrefix(s) {
		return s
	}
	var out strings.Builder
	for {
		i := indexFold(s, config.PrivateKeyPrefix)
		if i < 0 {
			out.WriteString(s)
			return out.String()
		}
		out.WriteString(s[:i])
		out.WriteString(redacted)
		j := i + len(config.PrivateKeyPrefix)
		for j < len(s) && isKeyChar(s[j]) {
			j++
		}
		s = s[j:]
	}
}

func hasPrivateKeyPrefix(s string) bool { return indexFold(s, config.PrivateKeyPrefix) >= 0 }

// indexFold is strings.Index ignoring ASCII case, for an ASCII sub. It
// compares bytes, so that offsets into s stay valid: lowering all of s, or
// Unicode case folding, could change lengths.
func indexFold(s, sub string) int {
next:
	for i := 0; i+len(sub) <= len(s); i++ {
		for j := 0; j < len(sub); j++ {
			if lowerASCII(s[i+j]) != lowerASCII(sub[j]) {
				continue next
			}
		}
		return i
	}
	return -1
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// isKeyChar: the characters of a suite name, ':' and base64.
func isKeyChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == ':' || c == '+' || c == '/' || c == '='
}

// truncate cuts s to at most n bytes, never inside a UTF-8 sequence, and
// says how many bytes were cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "...[" + strconv.Itoa(len(s)-cut) + " bytes cut]"
}
