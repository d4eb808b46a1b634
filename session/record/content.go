package record

// ContentType is TLSInnerPlaintext.type (RFC 9846 section 5.1): what a record
// carries once decrypted. Both framings use the same inner plaintext so the
// session protocol can send its messages over either.
type ContentType uint8

const (
	// ContentAlert carries one alert message.
	ContentAlert ContentType = 21
	// ContentHandshake carries session protocol messages (the two-party
	// profile's ConnectionUpdate and EpochKeyUpdate, draft-kohbrok-mls-tls).
	ContentHandshake ContentType = 22
	// ContentApplicationData carries tunnelled IP packets.
	ContentApplicationData ContentType = 23
)

// MaxPlaintext is the largest record content, 2^14 bytes (RFC 9846 5.1).
const MaxPlaintext = 1 << 14

// maxInner bounds the encoded TLSInnerPlaintext, padding included: content,
// one type byte and zeros together stay within 2^14 + 1 (RFC 9846 5.4).
const maxInner = MaxPlaintext + 1

func (c ContentType) valid() bool {
	return c == ContentApplicationData || c == ContentHandshake || c == ContentAlert
}

// innerLen checks what a sender asks to seal and returns the length of the
// encoded TLSInnerPlaintext.
func innerLen(ct ContentType, n, padding int) (int, error) {
	if !ct.valid() || padding < 0 {
		return 0, ErrInvalidArgument
	}
	// Only application data may be empty (RFC 9846 5.4): an empty handshake
	// or alert record is a protocol error the peer would have to reject.
	if n == 0 && ct != ContentApplicationData {
		return 0, ErrInvalidArgument
	}
	if n > maxInner-1 || padding > maxInner-1-n {
		return 0, ErrRecordOverflow
	}
	return n + 1 + padding, nil
}

// finishInner writes the content type and zero padding after n content bytes
// already in place at the start of inner.
func finishInner(inner []byte, n int, ct ContentType) {
	inner[n] = byte(ct)
	clear(inner[n+1:])
}

// parseInner splits an authenticated TLSInnerPlaintext into content type and
// content. The common unpadded record costs one comparison; padding costs a
// backwards scan limited to the decrypted bytes, as RFC 9846 5.4 requires.
func parseInner(inner []byte) (ContentType, []byte, error) {
	if len(inner) > maxInner {
		return 0, nil, ErrRecordOverflow
	}
	i := len(inner) - 1
	for i >= 0 && inner[i] == 0 {
		i--
	}
	if i < 0 {
		return 0, nil, ErrUnexpectedMessage
	}
	ct := ContentType(inner[i])
	if !ct.valid() || (i == 0 && ct != ContentApplicationData) {
		return 0, nil, ErrUnexpectedMessage
	}
	return ct, inner[:i:i], nil
}

// placeAt returns dst extended by n bytes, reallocating only when dst lacks
// the capacity, like append. The second result is the new tail.
func placeAt(dst []byte, n int) (whole, tail []byte) {
	total := len(dst) + n
	if cap(dst) >= total {
		whole = dst[:total]
	} else {
		whole = make([]byte, total)
		copy(whole, dst)
	}
	return whole, whole[len(dst):]
}

// movePayload puts payload at the start of body unless it already is there:
// the in-place path, where the caller read the packet into its final spot,
// costs no copy. copy is a memmove, so any other overlap is also safe.
func movePayload(body, payload []byte) {
	if len(payload) == 0 || &body[0] == &payload[0] {
		return
	}
	copy(body, payload)
}
