package ctl

import (
	"context"
	"errors"
	"fmt"

	"github.com/current-vpn/current/config"
)

// Code classifies an error so that programs can act on it without parsing
// messages. Codes are part of the protocol: never rename one, only add.
type Code string

// Error codes; docs/ctl.md says when each is used.
const (
	CodeBadRequest         Code = "bad_request"
	CodeUnknownOp          Code = "unknown_op"
	CodeUnknownPeer        Code = "unknown_peer"
	CodeConflict           Code = "conflict"
	CodeTimeout            Code = "timeout"
	CodeInternal           Code = "internal"
	CodeUnsupportedVersion Code = "unsupported_version"
	CodeTooLarge           Code = "too_large"
	CodePermissionDenied   Code = "permission_denied"
	CodeBusy               Code = "busy"
)

// Error is a typed protocol error. The server sends it, the client returns
// it, and a Backend returns one (directly or wrapped) to choose the code a
// failure is reported with.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// Errorf returns an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	if e.Message == "" {
		return string(e.Code)
	}
	return e.Message
}

// Is makes the sentinels below match any *Error with the same code, so that
// errors.Is(err, ctl.ErrUnknownPeer) works on what Client returns.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Code == e.Code
}

// Sentinels for errors.Is, one per code.
var (
	ErrBadRequest         = &Error{Code: CodeBadRequest}
	ErrUnknownOp          = &Error{Code: CodeUnknownOp}
	ErrUnknownPeer        = &Error{Code: CodeUnknownPeer}
	ErrConflict           = &Error{Code: CodeConflict}
	ErrTimeout            = &Error{Code: CodeTimeout}
	ErrInternal           = &Error{Code: CodeInternal}
	ErrUnsupportedVersion = &Error{Code: CodeUnsupportedVersion}
	ErrTooLarge           = &Error{Code: CodeTooLarge}
	ErrPermissionDenied   = &Error{Code: CodePermissionDenied}
	ErrBusy               = &Error{Code: CodeBusy}
)

// wireError turns what a Backend returned into what goes on the wire. A
// Backend is not required to use *Error: a deadline becomes a timeout and a
// configuration validation error a bad request, because those are what
// they mean to the caller; anything else is internal, with its message
// kept (the socket is root's, and the message is what helps).
func wireError(err error) *Error {
	var e *Error
	var cl config.ErrorList
	var ce *config.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &e):
		return &Error{Code: e.Code, Message: err.Error()}
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Code: CodeTimeout, Message: err.Error()}
	case errors.As(err, &cl), errors.As(err, &ce):
		return &Error{Code: CodeBadRequest, Message: err.Error()}
	}
	return &Error{Code: CodeInternal, Message: err.Error()}
}
