package pg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestTransient(t *testing.T) {
	opErr := func(err error) error { return &net.OpError{Op: "dial", Net: "tcp", Err: err} }
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"EOF", io.EOF, true},
		{"unexpected EOF", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"net.ErrClosed", net.ErrClosed, true},
		{"pgconn.ErrConnClosed", pgconn.ErrConnClosed, true},
		{"refused", opErr(os.NewSyscallError("connect", syscall.ECONNREFUSED)), true},
		{"reset", syscall.ECONNRESET, true},
		{"aborted", syscall.ECONNABORTED, true},
		{"broken pipe", syscall.EPIPE, true},
		{"OpError", opErr(errors.New("no route to host")), true},
		{"dial timeout", opErr(os.ErrDeadlineExceeded), true},
		{"DNS temporary", &net.DNSError{Err: "server misbehaving", IsTemporary: true}, true},
		{"DNS timeout", &net.DNSError{Err: "timeout", IsTimeout: true}, true},
		{"DNS not found", opErr(&net.DNSError{Err: "no such host", IsNotFound: true}), false},
		{"08006", &pgconn.PgError{Code: "08006"}, true},
		{"57P01", &pgconn.PgError{Code: "57P01"}, true},
		{"57P02", &pgconn.PgError{Code: "57P02"}, true},
		{"57P03", &pgconn.PgError{Code: "57P03"}, true},
		{"42P01 undefined table", &pgconn.PgError{Code: "42P01"}, false},
		{"28P01 bad password", &pgconn.PgError{Code: "28P01"}, false},
		{"canceled", context.Canceled, false},
		{"canceled in OpError", opErr(context.Canceled), false},
		{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), false},
		{"other", errors.New("syntax error"), false},
	} {
		if got := Transient(tt.err); got != tt.want {
			t.Errorf("Transient(%s: %v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

func TestDo(t *testing.T) {
	t.Parallel()
	fault := fmt.Errorf("connect: %w", syscall.ECONNREFUSED)

	t.Run("RecoversAfterFaults", func(t *testing.T) {
		t.Parallel()
		n := 0
		r, err := Do(t.Context(), time.Second, func(context.Context) error {
			if n++; n < 3 {
				return fault
			}
			return nil
		})
		if err != nil || r.Attempts != 3 || r.Spent || r.Interrupted {
			t.Errorf("Do = %+v, %v; want 3 attempts and no error", r, err)
		}
	})

	t.Run("NotTransient", func(t *testing.T) {
		t.Parallel()
		bad := &pgconn.PgError{Code: "42P01"}
		r, err := Do(t.Context(), time.Second, func(context.Context) error { return bad })
		if err != bad || r.Attempts != 1 || r.Spent {
			t.Errorf("Do = %+v, %v; want 1 attempt and %v", r, err, bad)
		}
	})

	t.Run("Stop", func(t *testing.T) {
		t.Parallel()
		r, err := Do(t.Context(), time.Second, func(context.Context) error { return Stop(fault) })
		if err != fault || r.Attempts != 1 || r.Spent {
			t.Errorf("Do = %+v, %v; want 1 attempt and %v", r, err, fault)
		}
	})

	t.Run("BudgetSpent", func(t *testing.T) {
		t.Parallel()
		const budget = 300 * time.Millisecond
		began := time.Now()
		r, err := Do(t.Context(), budget, func(context.Context) error {
			time.Sleep(10 * time.Millisecond) // the first fault comes late: the budget starts there
			return fault
		})
		took := time.Since(began)
		if err != fault || !r.Spent || r.Interrupted || r.Attempts < 3 {
			t.Errorf("Do = %+v, %v; want the budget spent after several attempts, and %v", r, err, fault)
		}
		if r.Waited < budget || took > budget+200*time.Millisecond {
			t.Errorf("Do waited %s and took %s, want about %s", r.Waited, took, budget)
		}
	})

	t.Run("NoBudget", func(t *testing.T) {
		t.Parallel()
		for _, budget := range []time.Duration{0, -1} {
			r, err := Do(t.Context(), budget, func(context.Context) error { return fault })
			if err != fault || !r.Spent || r.Attempts != 1 || r.Waited != 0 {
				t.Errorf("Do(budget %s) = %+v, %v; want the budget spent at once", budget, r, err)
			}
		}
	})

	t.Run("ContextCanceled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(150*time.Millisecond, cancel)
		began := time.Now()
		r, err := Do(ctx, time.Minute, func(context.Context) error { return fault })
		if err != fault || !r.Interrupted || r.Spent {
			t.Errorf("Do = %+v, %v; want it interrupted with %v", r, err, fault)
		}
		if d := time.Since(began); d > time.Second {
			t.Errorf("Do took %s after ctx ended at 150ms", d)
		}
	})

	t.Run("ContextEndedDuringOp", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		r, err := Do(ctx, time.Minute, func(context.Context) error { cancel(); return fault })
		if err != fault || r.Interrupted || r.Spent || r.Attempts != 1 {
			t.Errorf("Do = %+v, %v; want 1 attempt and %v", r, err, fault)
		}
	})

	// A ctx that ends in a retry's op, or as its wait ends (when the
	// select picks the timer), interrupts the retries all the same.
	t.Run("ContextEndedDuringRetry", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		calls := 0
		r, err := Do(ctx, time.Minute, func(context.Context) error {
			if calls++; calls == 2 {
				cancel()
			}
			return fault
		})
		if err != fault || !r.Interrupted || r.Spent || r.Attempts != 2 {
			t.Errorf("Do = %+v, %v; want 2 attempts, interrupted, and %v", r, err, fault)
		}
	})
}

// A fault after progress is a new fault: the budget starts over, so a long
// stream survives more faults in total than one budget's worth of time.
func TestDo_Progressed(t *testing.T) {
	t.Parallel()
	attempts := 0
	res, err := Do(t.Context(), 150*time.Millisecond, func(context.Context) error {
		attempts++
		if attempts <= 4 {
			time.Sleep(100 * time.Millisecond) // streaming rows, then the fault
			return Progressed(io.EOF)
		}
		return nil
	})
	if err != nil || res.Spent || res.Attempts != 5 {
		t.Errorf("Do = %+v, %v; want success on the 5th attempt: each fault followed progress", res, err)
	}
}
