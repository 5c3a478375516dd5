package eventgen_test

import (
	"context"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/mrengine/mr/internal/eventgen"
	"github.com/mrengine/mr/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestSeedPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	cfg := eventgen.Config{Rows: 3000, Seed: 3, PoisonRate: 0.01, NullPayloadRate: 0.005, GapEvery: 7}
	if err := eventgen.SeedPostgres(ctx, conn, cfg, true); err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&n); err != nil || n != cfg.Rows {
		t.Fatalf("events holds %d rows (%v), want %d", n, err, cfg.Rows)
	}
	rows, _ := conn.Query(ctx, eventgen.PostgresPoisonIDs)
	poison, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	var want []int64
	var events int64
	for e := range cfg.All() {
		if e.Poison {
			want = append(want, e.ID)
		} else {
			events++
		}
	}
	if len(want) == 0 || !slices.Equal(poison, want) {
		t.Errorf("PostgreSQL finds poison ids %v, the generator made %v", poison, want)
	}
	var counted int64
	if err := conn.QueryRow(ctx, `SELECT sum(events)::bigint FROM (`+eventgen.PostgresTruth+`) t`).Scan(&counted); err != nil || counted != events {
		t.Errorf("the ground truth counts %d events (%v), want %d", counted, err, events)
	}
}
