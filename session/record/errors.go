package record

// Error is the type of every error the record layer returns. The values are
// constants rather than errors.New variables so that the session layer can
// switch on them to count drops, nobody can reassign them, and returning one
// on the per-packet path never allocates.
type Error uint8

const (
	// ErrBadRecordMAC: the AEAD rejected the record (forged, corrupted or
	// keyed for someone else). Fatal on a stream; a counted drop for datagrams.
	ErrBadRecordMAC Error = iota + 1
	// ErrRecordOverflow: a record or its plaintext exceeds the TLS 1.3 size
	// limits, on either side. Fatal on a stream.
	ErrRecordOverflow
	// ErrReplay: the datagram's sequence number was already accepted.
	ErrReplay
	// ErrTooOld: the datagram's sequence number is left of the replay window.
	ErrTooOld
	// ErrUnknownEpoch: the datagram names an epoch whose keys we do not hold
	// (too old, expired grace period, or not installed yet).
	ErrUnknownEpoch
	// ErrUnknownReceiver: the datagram's receiver index is not ours.
	ErrUnknownReceiver
	// ErrKeyExhausted: the keys reached a hard usage limit and must not be
	// used again; the session must install the next epoch's keys.
	ErrKeyExhausted
	// ErrMalformed: a header that cannot belong to a valid record (wrong
	// type or version, truncated, sequence number out of range).
	ErrMalformed
	// ErrUnexpectedMessage: an authentic record whose TLSInnerPlaintext is
	// invalid (no content type, unknown type, empty handshake or alert).
	ErrUnexpectedMessage
	// ErrNoKeys: no keys are installed.
	ErrNoKeys
	// ErrEpochOrder: keys installed for an epoch that does not move forward.
	ErrEpochOrder
	// ErrNeedMore: the stream parser holds no complete record yet. Not a
	// failure: read more bytes from the transport.
	ErrNeedMore
	// ErrInvalidArgument: a caller error (bad content type, negative padding,
	// keys reused, unknown suite).
	ErrInvalidArgument
)

var errorText = [...]string{
	ErrBadRecordMAC:      "record: bad record MAC",
	ErrRecordOverflow:    "record: record overflow",
	ErrReplay:            "record: replayed sequence number",
	ErrTooOld:            "record: sequence number left of the replay window",
	ErrUnknownEpoch:      "record: unknown epoch",
	ErrUnknownReceiver:   "record: unknown receiver index",
	ErrKeyExhausted:      "record: key usage limit reached",
	ErrMalformed:         "record: malformed record header",
	ErrUnexpectedMessage: "record: invalid inner plaintext",
	ErrNoKeys:            "record: no keys installed",
	ErrEpochOrder:        "record: epoch does not move forward",
	ErrNeedMore:          "record: incomplete record",
	ErrInvalidArgument:   "record: invalid argument",
}

func (e Error) Error() string {
	if int(e) < len(errorText) && errorText[e] != "" {
		return errorText[e]
	}
	return "record: unknown error"
}
