package sinks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Backoff between retries of an operation: it doubles from minBackoff up
// to maxBackoff, and each wait is drawn from [b/2, b) so that the workers
// of many processes cut off by one restart do not all come back at the
// same instant. 100ms rides out a dropped connection almost unnoticed;
// 5s keeps polling a restarting server a few times within RetryBudget.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// noRetry carries an error that retry must return as it is, transient or
// not.
type noRetry struct{ err error }

func (e *noRetry) Error() string { return e.err.Error() }
func (e *noRetry) Unwrap() error { return e.err }

// retry calls op until it returns nil, an error that is not transient (see
// isTransient), or a *noRetry; or until the next attempt would start after
// RetryBudget has passed, when the last error is returned wrapped in
// ErrUnavailable. ctx ends the waiting too.
func (s *Postgres) retry(ctx context.Context, op func(ctx context.Context) error) error {
	began := time.Now()
	backoff := minBackoff
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		var nr *noRetry
		if errors.As(err, &nr) {
			return nr.err
		}
		if err == nil || !isTransient(ctx, err) {
			return err
		}
		wait := backoff/2 + rand.N(backoff/2)
		if time.Since(began)+wait > s.RetryBudget {
			return fmt.Errorf("%w: %d attempts in %s failed; check that the server is up and reachable, then run again: %w",
				ErrUnavailable, attempt, time.Since(began).Round(time.Millisecond), err)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("%w (while retrying after: %w)", context.Cause(ctx), err)
		case <-timer.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// isTransient reports whether err is a connection fault that may go away
// by itself: a refused, reset or broken connection, an unexpected EOF, a
// timeout of the network, SQLSTATE class 08 (connection exception), 57P01
// (admin shutdown), 57P02 (crash shutdown) or 57P03 (cannot connect now),
// or an error pgx marks as safe to retry because nothing reached the
// server. An error from ctx ending is never transient.
func isTransient(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P01", "57P02", "57P03":
			return true
		}
		return len(pgErr.Code) == 5 && pgErr.Code[:2] == "08"
	}
	for _, e := range []error{io.EOF, io.ErrUnexpectedEOF, net.ErrClosed,
		syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE} {
		if errors.Is(err, e) {
			return true
		}
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return true
	}
	return pgconn.SafeToRetry(err)
}
