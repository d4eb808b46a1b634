package mls

// zero overwrites b. Go gives no guarantee that copies made by the runtime are
// cleared too, so this is best effort: it shortens the time a secret stays in
// memory we control.
func zero(b []byte) {
	clear(b)
}

// zeroAll zeroes every slice given.
func zeroAll(bs ...[]byte) {
	for _, b := range bs {
		clear(b)
	}
}
