package mls

import (
	"testing"

	"github.com/current-vpn/current/session/mls/wire"
)

func init() { registerVectorChecker("deserialization", checkDeserializationVectors) }

type deserializationVector struct {
	VLBytesHeader hexBytes `json:"vlbytes_header"`
	Length        *uint64  `json:"length"`
}

// checkDeserializationVectors decodes each variable-length vector header and
// compares the length it announces; the header must be consumed exactly and
// re-encode to the same bytes.
func checkDeserializationVectors(t *testing.T, data []byte) {
	for i, tc := range decodeVectors[deserializationVector](t, data) {
		if tc.VLBytesHeader == nil || tc.Length == nil {
			t.Errorf("case %d: vector lacks vlbytes_header or length", i)
			continue
		}
		v, n, err := wire.ParseVarint(tc.VLBytesHeader)
		switch {
		case err != nil:
			t.Errorf("case %d: header %x: %v", i, tc.VLBytesHeader, err)
		case n != len(tc.VLBytesHeader):
			t.Errorf("case %d: header %x: consumed %d of %d bytes", i, tc.VLBytesHeader, n, len(tc.VLBytesHeader))
		case v != *tc.Length:
			t.Errorf("case %d: header %x: length %d, want %d", i, tc.VLBytesHeader, v, *tc.Length)
		}
		// The vectors use minimal headers, so encoding the length back must
		// give the same bytes.
		if enc, ok := wire.AppendVarint(nil, *tc.Length); !ok || string(enc) != string(tc.VLBytesHeader) {
			t.Errorf("case %d: encoding length %d gives %x, want %x", i, *tc.Length, enc, tc.VLBytesHeader)
		}
	}
}
