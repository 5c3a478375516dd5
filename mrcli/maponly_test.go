package mrcli

import (
	"context"
	"errors"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mrengine/mr/internal/crashpoint"
	"github.com/mrengine/mr/internal/eventgen"
	"github.com/mrengine/mr/internal/pgtest"
)

// The map-only job event_payloads on a real PostgreSQL, killed with
// SIGKILL in the middle of its run and resumed.

// pgPayloadsTruth is event_payloads' output computed by PostgreSQL alone,
// over the events whose payload is a JSON object; it needs
// mr_is_json_object (see eventgen.PostgresIsJSONObject).
const pgPayloadsTruth = `
	SELECT id, account_id, (SELECT count(*) FROM jsonb_object_keys(p))::bigint,
		CASE WHEN jsonb_typeof(p->'channel') = 'string' THEN p->>'channel' END,
		CASE WHEN jsonb_typeof(p->'items') = 'number' AND p->>'items' ~ '^-?[0-9]+$' THEN (p->>'items')::bigint END
	FROM (SELECT id, account_id, CASE WHEN coalesce(mr_is_json_object(payload), false) THEN payload::jsonb END AS p FROM events) e
	WHERE p IS NOT NULL`

const pgPayloadsOutput = `SELECT event_id, account_id, keys, channel, items FROM event_payloads`

// mapOnlyBundle is a seeded events table on PostgreSQL and the mr run
// command of event_payloads over it.
type mapOnlyBundle struct {
	db      *pgxpool.Pool
	workdir string
	args    []string
}

func setupMapOnly(t *testing.T, rows int64) *mapOnlyBundle {
	t.Helper()
	dsn := pgtest.DSN(t)
	b := &mapOnlyBundle{db: pgtest.PoolFor(t, dsn), workdir: t.TempDir()}
	// One poison payload in 100, so that most chunks have dead letters,
	// whose exactly-once the kills put to the test.
	gen := eventgen.Config{Rows: rows, Seed: 3, PoisonRate: 0.008, NullPayloadRate: 0.002, GapEvery: 50}
	if err := eventgen.SeedPostgres(context.Background(), b.db, gen, true); err != nil {
		t.Fatal(err)
	}
	b.args = []string{"run", "event_payloads", "--source", dsn, "--workdir", b.workdir,
		"--workers", "2", "--partitions", "4", "--chunk-size", "100"}
	return b
}

// count returns the row count of a query, or an error (the output table
// may not exist yet).
func (b *mapOnlyBundle) count(query string) (int64, error) {
	var n int64
	err := b.db.QueryRow(context.Background(), `SELECT count(*) FROM (`+query+`) q`).Scan(&n)
	return n, err
}

// finish resumes the run to its end in this process and checks the output
// table, the dead letters and the sink's commit records against what
// PostgreSQL computes from the events.
func (b *mapOnlyBundle) finish(t *testing.T) {
	t.Helper()
	r := runMR(t, b.args...)
	if r.code != ExitOK || !strings.Contains(r.stdout, "(resumed") {
		t.Fatalf("resumed run: exit %d, want 0 and a resumed run; stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, q := range []string{pgPayloadsOutput + ` EXCEPT ALL ` + pgPayloadsTruth, pgPayloadsTruth + ` EXCEPT ALL ` + pgPayloadsOutput} {
		if n, err := b.count(q); err != nil || n != 0 {
			t.Errorf("%d rows differ from the ground truth (%v): %s", n, err, q)
		}
	}
	good, err := b.count(pgPayloadsTruth)
	if err != nil || good == 0 {
		t.Fatalf("the ground truth has %d rows (%v)", good, err)
	}
	// Each event is one key: the chunks the sink recorded upserted each
	// good event once, so no chunk was applied twice, under its id or
	// another.
	var chunks, upserted int64
	if err := b.db.QueryRow(context.Background(), `SELECT count(*), coalesce(sum("rows"), 0) FROM mr_bucket_commits`).Scan(&chunks, &upserted); err != nil {
		t.Fatal(err)
	}
	if upserted != good || chunks == 0 {
		t.Errorf("the sink recorded %d chunks of %d rows; want the %d good events upserted once", chunks, upserted, good)
	}
	rows, err := b.db.Query(context.Background(), eventgen.PostgresPoisonIDs)
	if err != nil {
		t.Fatal(err)
	}
	poison, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	dlq := (&demoBundle{workdir: b.workdir}).deadLetterIDs(t, runID(t, r.stdout))
	if len(poison) == 0 || !slices.Equal(dlq, poison) {
		t.Errorf("after the kill the DLQ holds %d letters, want the %d poison rows exactly once", len(dlq), len(poison))
	}
}

// TestCrash_PostgresMapOnly kills mr with SIGKILL on either side of a
// chunk's sink commit (after its checkpoint named it as pending, before
// PostgreSQL committed it; after the commit, before a checkpoint folded
// it in) and at a moment chosen by the output table, then resumes.
func TestCrash_PostgresMapOnly(t *testing.T) {
	t.Parallel()
	for _, point := range []string{crashpoint.ChunkIntent + ":9", crashpoint.ChunkApplied + ":9"} {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			b := setupMapOnly(t, 6_000)
			out, err := mrCommand(t, []string{crashpoint.Env + "=" + point}, b.args...).CombinedOutput()
			if !killed(err) {
				t.Fatalf("mr was not killed at %s: %v\n%s", point, err, out)
			}
			// Results appear as the run goes: the chunks before the kill.
			if n, err := b.count(pgPayloadsOutput); err != nil || n == 0 || n >= 6_000 {
				t.Errorf("after the kill event_payloads holds %d rows (%v); want those of the chunks committed", n, err)
			}
			b.finish(t)
		})
	}
	t.Run("MidRun", func(t *testing.T) {
		t.Parallel()
		b := setupMapOnly(t, 10_000)
		cmd := mrCommand(t, nil, b.args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill it once its first chunks are in the table: mid-run, whatever
		// the machine's speed.
		deadline := time.Now().Add(time.Minute)
		for {
			n, err := b.count(pgPayloadsOutput)
			var pgErr *pgconn.PgError
			if err != nil && !(errors.As(err, &pgErr) && pgErr.Code == "42P01") { // not created yet
				t.Fatal(err)
			}
			if n >= 500 || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		if err := cmd.Wait(); !killed(err) {
			t.Fatalf("mr ended before the kill (%v): the test needs a longer run", err)
		}
		if n, _ := b.count(pgPayloadsOutput); n >= 10_000 {
			t.Fatalf("mr wrote all its rows (%d) before the kill: the test needs a longer run", n)
		}
		b.finish(t)
	})
}
