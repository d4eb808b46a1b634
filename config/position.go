package config

import "strconv"

// positions maps a key path (keyPath.String(), e.g. "peer[1].allowed_ips[0]")
// to the 1-based line where that key or array element starts.
//
// BurntSushi/toml records key positions too, but keyed by a path without
// array indices: every [[peer]] shares "peer.name", so it only remembers the
// last peer's lines. This scanner walks the document's structure just far
// enough to index arrays. It runs only on documents the TOML parser has
// accepted, so it can stay small; on anything else it still terminates and
// never panics (FuzzParse checks), it merely knows fewer lines.
type positions map[string]int

// line returns the line of the most precise known prefix of p, or 0.
func (ps positions) line(p keyPath) int {
	for n := len(p); n > 0; n-- {
		if l, ok := ps[p[:n].String()]; ok {
			return l
		}
	}
	return 0
}

type scanner struct {
	src    string
	i      int
	line   int
	pos    positions
	arrays map[string]int // [[x]] headers seen per array path
}

func scanPositions(src string) positions {
	s := &scanner{src: src, line: 1, pos: positions{}, arrays: map[string]int{}}
	s.document()
	return s.pos
}

func (s *scanner) eof() bool { return s.i >= len(s.src) }

func (s *scanner) peek(off int) byte {
	if s.i+off < len(s.src) {
		return s.src[s.i+off]
	}
	return 0
}

func (s *scanner) advance() {
	if s.src[s.i] == '\n' {
		s.line++
	}
	s.i++
}

// blank skips spaces and tabs, and also newlines and comments if multiline.
func (s *scanner) blank(multiline bool) {
	for !s.eof() {
		switch c := s.src[s.i]; {
		case c == ' ' || c == '\t':
			s.i++
		case c == '#':
			for !s.eof() && s.src[s.i] != '\n' {
				s.i++
			}
		case multiline && (c == '\n' || c == '\r'):
			s.advance()
		default:
			return
		}
	}
}

func (s *scanner) record(p keyPath) {
	k := p.String()
	if _, ok := s.pos[k]; !ok {
		s.pos[k] = s.line
	}
}

func (s *scanner) document() {
	var table keyPath
	for !s.eof() {
		start := s.i
		s.blank(true)
		if s.eof() {
			return
		}
		switch {
		case s.peek(0) == '[' && s.peek(1) == '[':
			s.i += 2
			table = s.header(s.keyParts(), true)
		case s.peek(0) == '[':
			s.i++
			table = s.header(s.keyParts(), false)
		default:
			s.keyValue(table)
		}
		// Whatever is left on the line is a comment in valid TOML.
		s.blank(false)
		for !s.eof() && s.src[s.i] != '\n' {
			s.i++
		}
		if s.i == start {
			s.advance() // cannot happen on valid TOML; guarantees progress
		}
	}
}

// header resolves a table header to its path: each prefix that names an
// array of tables refers to that array's latest element.
func (s *scanner) header(parts []string, array bool) keyPath {
	var p keyPath
	for j, name := range parts {
		p = p.key(name)
		k := p.String()
		if j == len(parts)-1 && array {
			n := s.arrays[k]
			s.arrays[k] = n + 1
			s.record(p)
			p = p.index(n)
		} else if n := s.arrays[k]; n > 0 {
			p = p.index(n - 1)
		}
	}
	s.record(p)
	return p
}

func (s *scanner) keyValue(table keyPath) {
	parts := s.keyParts()
	if len(parts) == 0 {
		return
	}
	p := table
	for _, name := range parts {
		p = p.key(name)
		s.record(p) // dotted keys define their parent tables here too
	}
	s.blank(false)
	if s.peek(0) != '=' {
		return
	}
	s.i++
	s.blank(false)
	s.value(p)
}

// keyParts reads a dotted key such as a."b.c".d.
func (s *scanner) keyParts() []string {
	var parts []string
	for {
		s.blank(false)
		if s.eof() {
			return parts
		}
		switch c := s.src[s.i]; {
		case c == '"' || c == '\'':
			start := s.i
			s.str()
			parts = append(parts, unquoteKey(s.src[start:s.i]))
		case isBareKeyChar(c):
			start := s.i
			for !s.eof() && isBareKeyChar(s.src[s.i]) {
				s.i++
			}
			parts = append(parts, s.src[start:s.i])
		default:
			return parts
		}
		s.blank(false)
		if s.peek(0) != '.' {
			return parts
		}
		s.i++
	}
}

func unquoteKey(q string) string {
	if len(q) >= 2 && q[0] == '\'' && q[len(q)-1] == '\'' {
		return q[1 : len(q)-1]
	}
	if u, err := strconv.Unquote(q); err == nil {
		return u
	}
	// An escape TOML has and Go lacks (\e): approximate, for display only.
	if len(q) >= 2 {
		return q[1 : len(q)-1]
	}
	return q
}

// value skips one value, recording the positions of array elements and
// inline table keys under p. It always consumes at least one byte unless
// at the end of input.
func (s *scanner) value(p keyPath) {
	if s.eof() {
		return
	}
	switch s.src[s.i] {
	case '"', '\'':
		s.str()
	case '[':
		s.i++
		s.array(p)
	case '{':
		s.i++
		s.inlineTable(p)
	default:
		start := s.i
		for !s.eof() {
			switch s.src[s.i] {
			case ' ', '\t', '\n', '\r', ',', ']', '}', '#':
				if s.i == start {
					s.advance()
				}
				return
			}
			s.i++
		}
	}
}

func (s *scanner) array(p keyPath) {
	n := 0
	for !s.eof() {
		s.blank(true)
		if s.eof() {
			return
		}
		switch s.src[s.i] {
		case ']':
			s.i++
			return
		case ',':
			s.i++
			n++
			continue
		}
		e := p.index(n)
		s.record(e)
		// A date-time with a space ("1979-05-27 07:32:00") comes back here
		// as two values; the second is recorded under the same index, so
		// nothing is miscounted.
		s.value(e)
	}
}

func (s *scanner) inlineTable(p keyPath) {
	for !s.eof() {
		// TOML 1.1 allows newlines and comments in inline tables.
		s.blank(true)
		if s.eof() {
			return
		}
		switch s.src[s.i] {
		case '}':
			s.i++
			return
		case ',':
			s.i++
			continue
		}
		start := s.i
		s.keyValue(p)
		if s.i == start {
			s.advance()
		}
	}
}

// str skips a string of any of the four kinds, counting lines.
func (s *scanner) str() {
	q := s.src[s.i]
	if s.peek(1) == q && s.peek(2) == q {
		s.i += 3
		for !s.eof() {
			c := s.src[s.i]
			if c == '\\' && q == '"' && s.i+1 < len(s.src) {
				s.i++
				s.advance()
				continue
			}
			if c == q && s.peek(1) == q && s.peek(2) == q {
				s.i += 3
				// Up to two more quotes belong to the content: """a"""""
				for k := 0; k < 2 && s.peek(0) == q; k++ {
					s.i++
				}
				return
			}
			s.advance()
		}
		return
	}
	s.i++
	for !s.eof() {
		c := s.src[s.i]
		switch {
		case c == '\\' && q == '"' && s.i+1 < len(s.src):
			s.i += 2
		case c == q:
			s.i++
			return
		case c == '\n':
			return // unterminated; cannot happen after a successful parse
		default:
			s.i++
		}
	}
}
