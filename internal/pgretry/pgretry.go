// Package pgretry retries operations on a PostgreSQL server through
// transient connection faults, for the sources and sinks packages, so that
// both agree on what a transient fault is and on how long to keep trying.
package pgretry

import (
	"context"
	"errors"
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
	// Interrupted is true when ctx ended while Do waited to retry; the
	// error is then op's last, transient, fault.
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
