package sources_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mrengine/mr/internal/crashpoint"
	"github.com/mrengine/mr/internal/pgtest"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/mapreduce/mapreducetest"
	"github.com/mrengine/mr/partition"
	"github.com/mrengine/mr/rollup"
)

// TestPostgres_SnapshotRun changes the table while a run reads it: after
// the first partition's first chunk, rows that partition has read move
// (UPDATE of the cursor) into the range of the second, and a row is
// inserted there. Every partition reads at the snapshot the run pinned,
// so the output is the table as it was when the map phase began: no row
// counted twice, none half-seen. Without the snapshot the moved rows
// were counted twice.
func TestPostgres_SnapshotRun(t *testing.T) {
	t.Parallel()
	h := mapreducetest.New(t, mapreducetest.Options{DSN: pgtest.DSN(t)})
	tab := mapreducetest.Table{Name: "moves", Columns: []mapreducetest.Column{
		{Name: "id", Type: "bigint primary key"}, {Name: "grp", Type: "text not null"}, {Name: "amount", Type: "bigint not null"},
	}}
	for id := int64(2); id <= 200; id += 2 { // even ids: the odd ones are free to move to
		tab.Rows = append(tab.Rows, []any{id, fmt.Sprintf("g%d", id%3), id})
	}
	h.Load(t, tab)
	const query = "SELECT grp, count(*) AS n, sum(amount) AS total FROM moves GROUP BY grp"
	want := h.Query(t, query+" ORDER BY grp")
	def := h.Rollup(t, query, rollup.Options{Into: "moved", PushDown: rollup.PushDownOff})

	var once sync.Once
	ctx := crashpoint.WithHook(context.Background(), func(point string) {
		if point != crashpoint.MapSpilled {
			return
		}
		once.Do(func() {
			// Rows 2…10 were read; 153…161 lie ahead, in the second partition.
			h.Exec(t, "UPDATE moves SET id = id + 151 WHERE id <= 10")
			h.Exec(t, "INSERT INTO moves VALUES (199, 'g0', 1000000)")
		})
	})
	cfg := mapreducetest.Config(t)
	cfg.Partitions, cfg.Workers, cfg.Buckets, cfg.ChunkSize = 2, 1, 1, 10
	if _, err := mapreduce.Run(ctx, def, h.Source(), h.Sink(), cfg); err != nil {
		t.Fatal(err)
	}
	got := h.Query(t, "SELECT grp, n, total FROM moved ORDER BY grp")
	if !slices.EqualFunc(got, want, func(a, b []any) bool { return fmt.Sprint(a) == fmt.Sprint(b) }) {
		t.Errorf("moved = %v, want the table as of the snapshot: %v", got, want)
	}
}

// TestPostgres_SnapshotRestart restarts the server while a snapshot is
// pinned: the exporting transaction dies with its connection, and the next
// read pins a new snapshot and goes on, as the map phase rides out a
// restart. It does not call t.Parallel, so no other test runs during the
// restart.
func TestPostgres_SnapshotRestart(t *testing.T) {
	bundle := setupPostgres(t, `CREATE TABLE t (id bigint PRIMARY KEY, v text)`,
		`INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 3000) i`)
	release, err := bundle.src.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	in := mapreduce.Input{Table: "t", Cursor: "id", Columns: []string{"v"}}
	b := mapreduce.NewBatch(in.Columns)
	if err := bundle.src.ReadChunk(t.Context(), in, partition.Range{Lo: 1, Hi: 3001}, 1000, b); err != nil || b.Len() != 1000 {
		t.Fatalf("first chunk: %d rows, %v", b.Len(), err)
	}

	pgtest.Restart(t)

	rest := readAll(t, bundle.src, in, partition.Range{Lo: 1001, Hi: 3001}, 1000)
	if len(rest) != 2000 || rest[0] != 1001 || rest[len(rest)-1] != 3000 {
		t.Errorf("after the restart read %d rows; want 2000 from 1001 to 3000", len(rest))
	}
}

// TestPostgres_SnapshotOneConnection: a pool of one connection cannot
// hold a snapshot and read beside it, which would hang the run; pinning
// says what to change instead.
func TestPostgres_SnapshotOneConnection(t *testing.T) {
	t.Parallel()
	src := openPostgres(t, pgtest.DSN(t)+"&pool_max_conns=1")
	_, err := src.Snapshot(t.Context())
	if err == nil || !strings.Contains(err.Error(), "pool_max_conns=1, but a run holds one connection for its snapshot and reads on others: set pool_max_conns to 2 or more") {
		t.Fatalf("Snapshot with one connection: %v", err)
	}
}
