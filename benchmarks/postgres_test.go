package benchmarks

import (
	"context"
	"errors"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mrengine/mr/internal/eventgen"
	"github.com/mrengine/mr/internal/pgtest"
)

// pgEvents is a seeded, analyzed events table in a schema of its own,
// shared by every benchmark of the test binary that reads that many rows.
// Benchmarks run one at a time, so each may create, fill and drop output
// tables next to it; none may change events.
type pgEvents struct {
	rows   int64
	schema string
	// dsn connects with search_path set to the schema alone, so that
	// events, mr_is_json_object and the output tables resolve unqualified.
	dsn string
	// bytes is the size of the rows' values as a source decodes them:
	// four 8-byte integers (id, account_id, ts, amount_cents) plus the
	// text of category and payload. It is what SetBytes reports.
	bytes int64
}

var pgSeeds struct {
	mu sync.Mutex
	m  map[int64]*pgSeed
}

type pgSeed struct {
	once   sync.Once
	events *pgEvents
	err    error
}

// errSeedStopped is the error of a seeding that a Fatal or Skip stopped:
// the benchmark that ran it reported why.
var errSeedStopped = errors.New("seeding the events table stopped earlier in this run; see the first benchmark that used it")

// seededPostgres returns the events table of eventsConfig(rows), seeding
// it on first use in this test binary (COPY, then VACUUM ANALYZE, so that
// the planner has statistics, the hint bits are set and no contender pays
// for the first scan after a bulk load).
func seededPostgres(b *testing.B, rows int64) *pgEvents {
	b.Helper()
	pgtest.AdminDSN(b) // skips (or fails under CI=true) without a PostgreSQL
	pgSeeds.mu.Lock()
	if pgSeeds.m == nil {
		pgSeeds.m = map[int64]*pgSeed{}
	}
	s := pgSeeds.m[rows]
	if s == nil {
		s = &pgSeed{}
		pgSeeds.m[rows] = s
	}
	pgSeeds.mu.Unlock()
	s.once.Do(func() {
		s.err = errSeedStopped // stays if seed stops the benchmark
		pprof.Do(context.Background(), pprof.Labels("contender", "seed"), func(context.Context) {
			s.events, s.err = seed(b, rows)
		})
	})
	if s.err != nil {
		b.Fatal(s.err)
	}
	return s.events
}

func seed(b *testing.B, rows int64) (*pgEvents, error) {
	began := time.Now()
	// The schema outlives this benchmark: binaryScoped ignores pgtest's
	// cleanup, so it lives as long as the cluster pgtest started (removed
	// with it), or, under MR_TEST_DSN, until the next test binary drops it
	// as stale (pgtest comments it with this binary's run token).
	schema, dsn := pgtest.Schema(binaryScoped{b})
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	if err := eventgen.SeedPostgres(ctx, conn, eventsConfig(rows), false); err != nil {
		return nil, err
	}
	ev := &pgEvents{rows: rows, schema: schema, dsn: dsn}
	for _, stmt := range []string{`VACUUM ANALYZE events`, `CHECKPOINT`} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return nil, err
		}
	}
	err = conn.QueryRow(ctx, `SELECT sum(32 + octet_length(category) + coalesce(octet_length(payload), 0))::bigint FROM events`).Scan(&ev.bytes)
	if err != nil {
		return nil, err
	}
	b.Logf("seeded %d events into schema %s in %s", rows, schema, time.Since(began).Round(time.Millisecond))
	return ev, nil
}

// binaryScoped is a testing.TB whose Cleanup does nothing, for resources
// that outlive the benchmark that happens to create them.
type binaryScoped struct{ testing.TB }

func (binaryScoped) Cleanup(func()) {}

// connect opens one connection to dsn, closed when b ends.
func connect(b *testing.B, dsn string) *pgx.Conn {
	b.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// execAll runs statements in order on conn, failing b on the first error.
func execAll(b *testing.B, conn *pgx.Conn, stmts ...string) {
	b.Helper()
	for _, stmt := range stmts {
		if _, err := conn.Exec(context.Background(), stmt); err != nil {
			b.Fatalf("%s: %v", stmt, err)
		}
	}
}
