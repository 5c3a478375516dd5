package mapreduce

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"syscall"

	"github.com/dustin/go-humanize"

	"github.com/mrengine/mr/internal/blobs"
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

// DiskFullError reports that the disk of a directory the run writes to
// filled up: the work directory (Config.Workdir, --workdir) or, with
// Config.Blobs, the blob directory. What the run committed before is
// whole, so freeing space (or moving the directory to a larger disk) and
// running the same command again resumes it from its last checkpoints.
type DiskFullError struct {
	// Dir is the directory whose disk filled up, and Flag what sets it:
	// "--workdir", or "Config.Blobs".
	Dir, Flag string
	// Path is the file being written, "" if unknown; Written the bytes of
	// it written, and Refused the bytes the failed write still had to
	// write (0 when syncing or renaming it failed).
	Path             string
	Written, Refused int64
	Err              error // wraps syscall.ENOSPC
}

func (e *DiskFullError) Error() string {
	var what string
	switch {
	case e.Path == "":
	case e.Refused == 0:
		what = fmt.Sprintf(" (committing the %s of %s failed)", humanize.IBytes(uint64(e.Written)), e.Path)
	case e.Written == 0:
		what = fmt.Sprintf(" (a write of %s to %s failed)", humanize.IBytes(uint64(e.Refused)), e.Path)
	default:
		what = fmt.Sprintf(" (a write of %s to %s, after %s of it, failed)", humanize.IBytes(uint64(e.Refused)), e.Path, humanize.IBytes(uint64(e.Written)))
	}
	return fmt.Sprintf("no space left on the disk of %s %s%s: free space or point %s at a larger disk, then run the same command again: the run resumes from its last checkpoints",
		e.Flag, e.Dir, what, e.Flag)
}

func (e *DiskFullError) Unwrap() error { return e.Err }

// diskFull returns err as a *DiskFullError if it is a full disk's
// (syscall.ENOSPC), and err otherwise: a full disk is the user's to fix,
// and the error of the write says neither which flag names the directory
// nor what to do.
func (c Config) diskFull(err error) error {
	var full *DiskFullError
	if !errors.Is(err, syscall.ENOSPC) || errors.As(err, &full) {
		return err
	}
	workdir, _ := filepath.Abs(c.Workdir)
	full = &DiskFullError{Dir: workdir, Flag: "--workdir", Err: err}
	var werr *blobs.WriteError
	if errors.As(err, &werr) {
		full.Path, full.Written, full.Refused = werr.Path, werr.Written, werr.Refused
		if werr.Bucket != workdir {
			full.Dir, full.Flag = werr.Bucket, "Config.Blobs"
		}
	}
	return full
}

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
