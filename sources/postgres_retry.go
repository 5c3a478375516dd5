package sources

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

// UnavailableError reports a PostgreSQL server that stayed unreachable, or
// kept breaking connections, for a whole retry budget. Nothing is lost:
// the run can be resumed from its checkpoints once the server is back.
type UnavailableError struct {
	Addr     string        // host:port of the server, or its unix socket
	Database string        // the database
	Attempts int           // how many times the call was tried
	Waited   time.Duration // from the first fault to giving up
	Err      error         // the last fault
}

// Error names the server and the last fault, and says how to go on.
func (e *UnavailableError) Error() string {
	return fmt.Sprintf("PostgreSQL at %s (database %q) still unreachable after %d attempts over %s: %v; "+
		"the run can be resumed: run the same command again once the server is back",
		e.Addr, e.Database, e.Attempts, e.Waited.Round(time.Millisecond), e.Err)
}

// Unwrap returns the last fault.
func (e *UnavailableError) Unwrap() error { return e.Err }

const (
	// retryFirstWait is the wait before the first retry: a broken pooled
	// connection is usually fixed by the next one at once, so start short.
	retryFirstWait = 100 * time.Millisecond
	// retryMaxWait caps the doubling, so that the retries still notice a
	// server soon after it is back.
	retryMaxWait = 5 * time.Second
)

// retry calls op until it succeeds, fails with an error that is not a
// transient connection fault, ctx ends, or the retry budget, counted from
// the first fault, is spent; then it returns an *UnavailableError wrapping
// the last fault. The waits double from retryFirstWait up to retryMaxWait,
// each with jitter (between half and all of it) so that many map tasks
// hit by the same restart do not reconnect in lockstep.
//
// op must be safe to repeat: every query of a source is a read.
func (s *Postgres) retry(ctx context.Context, op func(context.Context) error) error {
	budget := s.RetryBudget
	if budget == 0 {
		budget = DefaultRetryBudget
	}
	var first time.Time
	wait := retryFirstWait
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		if err == nil || ctx.Err() != nil || !transient(err) {
			return err
		}
		now := time.Now()
		if first.IsZero() {
			first = now
		}
		left := budget - now.Sub(first)
		if left <= 0 {
			return &UnavailableError{Addr: s.addr, Database: s.database, Attempts: attempt, Waited: now.Sub(first), Err: err}
		}
		d := min(wait/2+rand.N(wait/2+1), left)
		timer := time.NewTimer(d)
		select {
		case <-ctx.Done():
			timer.Stop()
			return err
		case <-timer.C:
		}
		wait = min(2*wait, retryMaxWait)
	}
}

// transient reports whether err is a connection fault that may go away:
// a refused, reset or dropped connection, a server shutting down, crashed
// or starting up, or a failure pgx knows happened before anything reached
// the server. Errors of a query itself (a missing table, a bad password)
// are not.
func transient(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P01", "57P02", "57P03": // admin_shutdown, crash_shutdown, cannot_connect_now
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08") // connection_exception
	}
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, pgconn.ErrConnClosed),
		pgconn.SafeToRetry(err),
		pgconn.Timeout(err): // connect_timeout; retry checks ctx first
		return true
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr.IsTemporary || dnsErr.IsTimeout
	}
	var opErr *net.OpError
	return errors.As(err, &opErr)
}
