package sources

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mrengine/mr/internal/sqlname"
	"github.com/mrengine/mr/mapreduce"
)

var _ mapreduce.Snapshotter = (*Postgres)(nil)

// snapshot is a transaction snapshot that a Postgres reads at: exported by
// a transaction that a connection of the pool holds open, and imported by
// every range query (SET TRANSACTION SNAPSHOT), so that all map tasks see
// the table as it was at one moment, as pg_dump's parallel workers do.
type snapshot struct {
	mu     sync.Mutex
	conn   *pgxpool.Conn // holds the exporting transaction open; nil when released
	id     string        // pg_export_snapshot()'s
	pinned bool          // between Snapshot and its release
}

// Snapshot pins the table's current state: until release, ReadChunk and
// Stream read every range as of this moment, whatever commits meanwhile.
// A row whose cursor an UPDATE moves into a range not yet read is then
// read once, where it was, and a row inserted meanwhile waits for the
// next run. The pinned snapshot holds back VACUUM's horizon on the
// server while the map phase runs, as any long transaction does.
//
// If the exporting connection dies (a server restart), the next query
// pins a new snapshot: the ranges left are read at that later moment, as
// after a resume.
func (s *Postgres) Snapshot(ctx context.Context) (release func(), err error) {
	s.snap.mu.Lock()
	defer s.snap.mu.Unlock()
	if s.snap.pinned {
		return nil, errors.New("sources: a snapshot is pinned already")
	}
	if s.pool.Config().MaxConns < 2 { // the readers would wait for it forever
		return nil, fmt.Errorf("sources: %s has pool_max_conns=%d, but a run holds one connection for its snapshot and reads on others: "+
			"set pool_max_conns to 2 or more", s, s.pool.Config().MaxConns)
	}
	if err := s.retry(ctx, s.snap.export(s.pool)); err != nil {
		return nil, s.db.Scrub(fmt.Errorf("sources: export a snapshot of %s: %w", s, err))
	}
	s.snap.pinned = true
	return func() {
		s.snap.mu.Lock()
		defer s.snap.mu.Unlock()
		s.snap.close()
		s.snap.pinned = false
	}, nil
}

// export returns the operation that opens a transaction on a connection
// of pool and exports its snapshot; s.mu must be held.
func (s *snapshot) export(pool *pgxpool.Pool) func(context.Context) error {
	return func(ctx context.Context) error {
		s.close()
		conn, err := pool.Acquire(ctx)
		if err != nil {
			return err
		}
		// The exporting transaction must outlive ctx's calls: it ends
		// at release.
		bg := context.WithoutCancel(ctx)
		if _, err := conn.Exec(bg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
			conn.Release()
			return err
		}
		if err := conn.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&s.id); err != nil {
			conn.Conn().Close(bg) //nolint:errcheck // the connection is dropped either way
			conn.Release()
			return err
		}
		s.conn = conn
		return nil
	}
}

// close ends the exporting transaction, if any; s.mu must be held.
func (s *snapshot) close() {
	if s.conn == nil {
		return
	}
	if _, err := s.conn.Exec(context.Background(), "ROLLBACK"); err != nil {
		s.conn.Conn().Close(context.Background()) //nolint:errcheck // dropped either way
	}
	s.conn.Release()
	s.conn, s.id = nil, ""
}

// current returns the id of the pinned snapshot, or "" if none is.
func (s *snapshot) current() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}

// renewSnapshot pins a new snapshot in place of old, which a query could not
// import, unless another query renewed it already.
func (s *Postgres) renewSnapshot(ctx context.Context, old string) error {
	s.snap.mu.Lock()
	defer s.snap.mu.Unlock()
	if !s.snap.pinned || s.snap.id != old {
		return nil
	}
	return s.snap.export(s.pool)(ctx)
}

// beginAt begins a read-only transaction, at the pinned snapshot if one is
// pinned. A snapshot that can no longer be imported (its exporting
// transaction died with its connection) is renewed once and the
// transaction begun at the new one.
func (s *Postgres) beginAt(ctx context.Context) (pgx.Tx, error) {
	for renewed := false; ; renewed = true {
		id := s.snap.current()
		if id == "" {
			return s.pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
		}
		tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			return nil, err
		}
		_, err = tx.Exec(ctx, "SET TRANSACTION SNAPSHOT "+sqlname.Literal(id))
		if err == nil {
			return tx, nil
		}
		tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // nothing to keep
		var pgErr *pgconn.PgError
		if renewed || !errors.As(err, &pgErr) || pgErr.Code != "22023" { // invalid_parameter_value: no such snapshot
			return nil, err
		}
		if err := s.renewSnapshot(ctx, id); err != nil {
			return nil, err
		}
	}
}
