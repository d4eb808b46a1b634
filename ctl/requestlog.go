package ctl

import "fmt"

// logChange records the outcome of a mutating request. A change that took
// effect is always logged; a failure is logged unless failLog holds it
// back. Parameters and errors are bounded and redacted (logParams).
func (h *handler) logChange(req *Request, err error, cred *Cred) {
	if err == nil {
		h.log.Info("ctl: request done", append(who(cred), "op", req.Op, "params", logParams(req.Op, req.Params))...)
		return
	}
	const msg = "ctl: request failed"
	code := wireError(err).Code
	if !h.fails.allow(failKind{msg: msg, op: req.Op, code: code, uid: int64(cred.Uid)}, err) {
		return
	}
	h.log.Warn(msg, append(who(cred), "op", req.Op, "params", logParams(req.Op, req.Params), "code", code, "err", logError(err))...)
}

// refused records a connection turned away (cred is nil when the kernel
// gave no credentials).
func (h *handler) refused(cred *Cred, err error) {
	const msg = "ctl: connection refused"
	code := wireError(err).Code
	if !h.fails.allow(failKind{msg: msg, code: code, uid: -1}, err) {
		return
	}
	var args []any
	if cred != nil {
		args = who(cred)
	}
	h.log.Warn(msg, append(args, "code", code, "err", logError(err))...)
}

// panicked records a Backend panic. A panic is a bug, but one a client
// can trigger again and again, and each line carries a stack.
func (h *handler) panicked(op string, p any, stack []byte, cred *Cred) {
	const msg = "ctl: panic in request"
	if !h.fails.allow(failKind{msg: msg, op: op, code: CodeInternal, uid: int64(cred.Uid)}, fmt.Errorf("panic: %v", p)) {
		return
	}
	h.log.Error(msg, append(who(cred), "op", op, "panic", truncate(redactText(fmt.Sprint(p)), maxLoggedError), "stack", string(stack))...)
}

// who names the client in log lines.
func who(cred *Cred) []any { return []any{"uid", cred.Uid, "pid", cred.Pid} }
