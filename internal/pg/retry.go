package pg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

const (
	// DefaultBudget is how long an operation keeps retrying, from its
	// first fault: long enough to ride out a restart or a managed failover
	// (typically 5 to 30 seconds), short enough that a server that is
	// really gone is reported while someone is still watching.
	DefaultBudget = 30 * time.Second

	// FirstWait is the wait before the first retry: a broken pooled
	// connection is usually fixed by the next one at once, so start short.
	FirstWait = 100 * time.Millisecond
	// MaxWait caps the doubling, so that the retries still notice a server
	// soon after it is back.
	MaxWait = 5 * time.Second
)

// Result tells how Do ended, besides its error.
type Result struct {
	Attempts int           // how many times op was called
	Waited   time.Duration // from the first fault to the end; 0 without faults
	// Spent is true when Do gave up because the budget was spent; the
	// error is then op's last, transient, fault.
	Spent bool
	// Interrupted is true when ctx ended while Do was retrying (waiting,
	// or in op again); the error is then op's last, transient, fault.
	Interrupted bool
}

// stop carries an error that Do must return as it is, transient or not.
type stop struct{ err error }

func (e *stop) Error() string { return e.err.Error() }
func (e *stop) Unwrap() error { return e.err }

// Stop wraps err so that Do returns err at once, without retrying, even if
// it is transient.
func Stop(err error) error { return &stop{err} }

type progressed struct{ err error }

func (e *progressed) Error() string { return e.err.Error() }
func (e *progressed) Unwrap() error { return e.err }

// Progressed wraps err to tell Do that op got somewhere before it failed
// (a stream delivered rows): the fault is a new one, so the budget and the
// waits start over instead of counting from a fault long past.
func Progressed(err error) error {
	if err == nil {
		return nil
	}
	return &progressed{err}
}

// Do calls op until it succeeds, fails with an error that is not
// Transient (or one wrapped by Stop, which it unwraps), ctx ends, or the
// budget, counted from the first fault, is spent. The waits double from
// FirstWait up to MaxWait, each with jitter (between half and all of it)
// so that many workers cut off by the same restart do not reconnect in
// lockstep; the last wait is cut short to end with the budget. A budget of
// zero or less means no retries. The error is nil or op's last one; Result
// tells why Do stopped.
//
// op must be safe to repeat.
func Do(ctx context.Context, budget time.Duration, op func(context.Context) error) (Result, error) {
	var r Result
	var first time.Time
	wait := FirstWait
	for {
		r.Attempts++
		err := op(ctx)
		var s *stop
		if errors.As(err, &s) {
			return r, s.err
		}
		var p *progressed
		if errors.As(err, &p) {
			err, first, wait = p.err, time.Time{}, FirstWait
		}
		now := time.Now()
		if !first.IsZero() {
			r.Waited = now.Sub(first)
		}
		if ctx.Err() != nil && !first.IsZero() && Transient(err) {
			// The ctx ended during a retry, or as its wait ended: a wait
			// and ctx.Done can be ready at once, and select picks either.
			r.Interrupted = true
			return r, err
		}
		if err == nil || ctx.Err() != nil || !Transient(err) {
			return r, err
		}
		if first.IsZero() {
			first = now
		}
		left := budget - r.Waited
		if left <= 0 {
			r.Spent = true
			return r, err
		}
		timer := time.NewTimer(min(wait/2+rand.N(wait/2+1), left))
		select {
		case <-ctx.Done():
			timer.Stop()
			r.Waited = time.Since(first)
			r.Interrupted = true
			return r, err
		case <-timer.C:
		}
		wait = min(2*wait, MaxWait)
	}
}

// Transient reports whether err is a connection fault that may go away by
// itself: a refused, reset, aborted or broken connection, an (unexpected)
// EOF, a closed connection, a network error or timeout (connect_timeout
// included), a DNS failure marked temporary, SQLSTATE class 08
// (connection exception), 57P01 (admin shutdown), 57P02 (crash shutdown)
// or 57P03 (cannot connect now), or an error pgx marks as safe to retry
// because nothing reached the server. Errors of a query itself (a missing
// table, a bad password) are not, and neither is a canceled context or a
// bare context deadline: Do checks its ctx before asking.
func Transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P01", "57P02", "57P03": // admin_shutdown, crash_shutdown, cannot_connect_now
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08") // connection_exception
	}
	for _, e := range []error{io.EOF, io.ErrUnexpectedEOF, net.ErrClosed, pgconn.ErrConnClosed,
		syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE} {
		if errors.Is(err, e) {
			return true
		}
	}
	if pgconn.SafeToRetry(err) || pgconn.Timeout(err) { // Timeout: connect_timeout
		return true
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr.IsTemporary || dnsErr.IsTimeout
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return true
	}
	// context.DeadlineExceeded is a net.Error with Timeout() too: a bare
	// one is a caller's deadline, not the network's.
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout() && !errors.Is(err, context.DeadlineExceeded)
}

// UnavailableError reports a PostgreSQL server that stayed unreachable, or
// kept breaking connections, for a whole retry budget. Nothing is lost: the
// run can be resumed from its checkpoints once the server is back. Sources
// and sinks both return it (as sources.UnavailableError and
// sinks.UnavailableError, which are this type).
type UnavailableError struct {
	Server   string        // host:port of the server, or the path of its unix socket
	Database string        // the database
	Attempts int           // how many times the operation was tried
	Waited   time.Duration // from the first fault to giving up
	Err      error         // the last fault
}

// Error names the server and the last fault, and says how to go on.
func (e *UnavailableError) Error() string {
	return fmt.Sprintf("PostgreSQL at %s (database %q) still unreachable after %d attempts over %s: %v; "+
		"the run can be resumed: run the same command again once the server is back",
		e.Server, e.Database, e.Attempts, e.Waited.Round(time.Millisecond), e.Err)
}

// Unwrap returns the last fault.
func (e *UnavailableError) Unwrap() error { return e.Err }

// Retry calls op through Do with budget, the RetryBudget of a source or
// sink: zero (or less) means no retries, as it does for Do. A spent budget
// gives an *UnavailableError wrapping the last fault; a ctx that ends while
// Retry waits gives ctx's cause wrapping the last fault; any other error is
// op's own.
//
// op must be safe to repeat.
func (db *DB) Retry(ctx context.Context, budget time.Duration, op func(context.Context) error) error {
	r, err := Do(ctx, budget, op)
	switch {
	case r.Spent:
		return &UnavailableError{Server: db.server, Database: db.database, Attempts: r.Attempts, Waited: r.Waited, Err: err}
	case r.Interrupted:
		return fmt.Errorf("%w (while retrying after: %w)", context.Cause(ctx), err)
	}
	return err
}
