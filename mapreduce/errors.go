package mapreduce

import (
	"errors"
	"fmt"
	"runtime/debug"
)

// Permanent marks a Map error that retrying cannot fix (a malformed
// payload, say): the row goes to the dead-letter queue after one attempt.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// IsPermanent reports whether err, or an error it wraps, was marked by
// Permanent or is a *ColumnError: a value a row getter cannot convert will
// not convert on a retry either.
func IsPermanent(err error) bool {
	var p *permanentError
	var c *ColumnError
	return errors.As(err, &p) || errors.As(err, &c)
}

// PanicError is a panic in user code, recovered into the row's error.
type PanicError struct {
	Value any
	Stack string
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// stack is e's stack, or "" for a nil e.
func (e *PanicError) stack() string {
	if e == nil {
		return ""
	}
	return e.Stack
}

// Unwrap exposes a panic value that is an error (such as *ColumnError).
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// recovered returns a *PanicError for a recover() value, or nil.
func recovered(v any) error {
	if v == nil {
		return nil
	}
	return &PanicError{Value: v, Stack: string(debug.Stack())}
}

// ErrFailureRate is returned, with a complete Summary, by a run that
// finished but whose share of failed rows is above Config.MaxFailureRate.
var ErrFailureRate = errors.New("failure rate above the threshold")

// ErrDamaged is wrapped by the errors that report run state (a dead-letter
// file, a manifest) that does not match what was committed: changed or
// lost outside mr.
var ErrDamaged = errors.New("run state damaged")

// ErrNoRun is wrapped by the errors of Inspect and DeadLetters for a run
// that has no plan.
var ErrNoRun = errors.New("no such run")

// ErrNoPartition is wrapped by the error of DeadLetters for a partition
// the run does not have.
var ErrNoPartition = errors.New("no such partition")
