package mls

import "errors"

// Errors a peer can provoke by sending bad messages. They are values so that
// callers (the session state machine) can count and classify them.
var (
	ErrBadSignature        = errors.New("mls: signature verification failed")
	ErrBadMembershipTag    = errors.New("mls: membership tag verification failed")
	ErrDecrypt             = errors.New("mls: message decryption failed")
	ErrWrongGroup          = errors.New("mls: message for another group")
	ErrWrongEpoch          = errors.New("mls: message for another epoch")
	ErrUnknownSender       = errors.New("mls: sender is not a member of the group")
	errBadConfirmationTag  = errors.New("mls: confirmation tag verification failed")
	errApplicationInPublic = errors.New("mls: application data must not be sent as a PublicMessage")
)

// ErrBadConfirmationTag is returned when a Commit's or GroupInfo's
// confirmation tag does not match the local transcript.
var ErrBadConfirmationTag = errBadConfirmationTag
