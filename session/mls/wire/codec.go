package wire

// Marshaler is a value with a TLS presentation language encoding.
type Marshaler interface {
	MarshalMLS(w *Writer)
}

// Unmarshaler decodes itself from a Reader, recording failures on it.
type Unmarshaler interface {
	UnmarshalMLS(r *Reader)
}

// Marshal returns the encoding of v.
func Marshal(v Marshaler) ([]byte, error) {
	w := NewWriter(nil)
	v.MarshalMLS(w)
	return w.Bytes()
}

// Unmarshal decodes v from data, which must hold exactly one encoding.
func Unmarshal(data []byte, v Unmarshaler) error {
	r := NewReader(data)
	v.UnmarshalMLS(r)
	return r.Finish()
}
