package coordinator

import (
	"context"
	"errors"
	"io/fs"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mrengine/mr/internal/pgtest"
	"github.com/mrengine/mr/mapreduce"
)

// storeBundle is a Store on a fresh schema that holds mr's tables only:
// the Store's methods outside a task never touch River's, so these tests
// skip River's migrations (see newTaskBundle for those that need them).
type storeBundle struct {
	ctx   context.Context
	pool  *pgxpool.Pool
	store *Store
}

func newStoreBundle(t *testing.T) *storeBundle {
	t.Helper()
	ctx := t.Context()
	pool := pgtest.Pool(t)
	if _, err := pool.Exec(ctx, mrSchema); err != nil {
		t.Fatalf("create mr's tables: %v", err)
	}
	return &storeBundle{ctx: ctx, pool: pool, store: &Store{pool: pool}}
}

// testPlan is a plan of run with commit, with enough of its fields set
// that a round trip through JSON shows them all kept.
func testPlan(run, commit string) *mapreduce.Plan {
	mark := int64(41)
	return &mapreduce.Plan{
		Format:      4,
		RunID:       run,
		Commit:      commit,
		Replace:     true,
		Job:         "daily_rollup",
		Source:      "postgres",
		Sink:        "postgres",
		OutputTable: "daily",
		Created:     time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC),
		Buckets:     4,
		Seed:        0xfeed,
		Rows:        1000,
		Mark:        &mark,
		Batch:       2,
	}
}

// testCheckpoint is a checkpoint of partition part under commit.
func testCheckpoint(commit string, part int, done bool) *mapreduce.Checkpoint {
	return &mapreduce.Checkpoint{
		Commit:    commit,
		Partition: part,
		Next:      int64(100 * (part + 1)),
		Done:      done,
		Seq:       3,
		Rows:      int64(10 * (part + 1)),
		Chunks:    2,
		Updated:   time.Date(2026, 12, 2, 6, 1, 0, 0, time.UTC),
	}
}

func (b *storeBundle) savePlan(t *testing.T, p *mapreduce.Plan) {
	t.Helper()
	if err := b.store.SavePlan(b.ctx, p); err != nil {
		t.Fatalf("SavePlan(%s, %s): %v", p.RunID, p.Commit, err)
	}
}

func (b *storeBundle) saveCheckpoint(t *testing.T, run string, cp *mapreduce.Checkpoint) {
	t.Helper()
	if err := b.store.SaveCheckpoint(b.ctx, run, cp); err != nil {
		t.Fatalf("SaveCheckpoint(%s, %d): %v", run, cp.Partition, err)
	}
}

func (b *storeBundle) markDone(t *testing.T, run, commit string, bucket int) {
	t.Helper()
	if err := b.store.MarkBucketDone(b.ctx, run, commit, bucket); err != nil {
		t.Fatalf("MarkBucketDone(%s, %s, %d): %v", run, commit, bucket, err)
	}
}

// keys lists run's records in mr_state, each as key@commit, in key order:
// what the database holds, not what the Store makes of it.
func (b *storeBundle) keys(t *testing.T, run string) []string {
	t.Helper()
	rows, err := b.pool.Query(b.ctx, "SELECT key || '@' || commit FROM mr_state WHERE run = $1 ORDER BY key", run)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestStore_LoadPlan checks the plan's round trip through mr_state and
// that a run without a plan is fs.ErrNotExist, which the engine takes
// for a run to plan (as DirStore's missing plan.json).
func TestStore_LoadPlan(t *testing.T) {
	t.Parallel()

	t.Run("Missing", func(t *testing.T) {
		t.Parallel()
		b := newStoreBundle(t)
		p, err := b.store.LoadPlan(b.ctx, "nope")
		if !errors.Is(err, fs.ErrNotExist) || p != nil {
			t.Fatalf("LoadPlan of a run without a plan = %v, %v; want nil and an error wrapping fs.ErrNotExist", p, err)
		}
		if !strings.Contains(err.Error(), "nope") {
			t.Errorf("error %q does not name the run", err)
		}
	})

	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		b := newStoreBundle(t)
		want := testPlan("r1", "c1")
		b.savePlan(t, want)
		got, err := b.store.LoadPlan(b.ctx, "r1")
		if err != nil {
			t.Fatal(err)
		}
		if got.RunID != want.RunID || got.Commit != want.Commit || got.Format != want.Format || !got.Replace ||
			got.Job != want.Job || got.OutputTable != want.OutputTable || !got.Created.Equal(want.Created) ||
			got.Buckets != want.Buckets || got.Seed != want.Seed || got.Rows != want.Rows ||
			got.Mark == nil || *got.Mark != *want.Mark || got.Batch != want.Batch {
			t.Errorf("LoadPlan = %+v; want %+v", got, want)
		}
		// A plan saved again under its own Commit (a rebuilt plan)
		// replaces the record in place.
		want.Rows = 2000
		b.savePlan(t, want)
		if got, err := b.store.LoadPlan(b.ctx, "r1"); err != nil || got.Rows != 2000 {
			t.Errorf("LoadPlan after a second SavePlan = %+v, %v; want Rows 2000", got, err)
		}
	})
}

// TestStore_SavePlan checks that a new plan voids the state of other
// Commits at once (a --fresh run), while a plan saved again under its own
// Commit keeps its state, and that other runs' state is left alone.
func TestStore_SavePlan(t *testing.T) {
	t.Parallel()
	b := newStoreBundle(t)
	b.savePlan(t, testPlan("r1", "old"))
	b.saveCheckpoint(t, "r1", testCheckpoint("old", 0, true))
	b.markDone(t, "r1", "old", 1)
	if err := b.store.SaveReplay(b.ctx, "r1", &mapreduce.ReplayManifest{Commit: "old", Generation: 1}); err != nil {
		t.Fatal(err)
	}
	// Another run's state under the same Commit string: only r1's plan
	// may void r1's records.
	b.savePlan(t, testPlan("r2", "old"))
	b.saveCheckpoint(t, "r2", testCheckpoint("old", 0, false))

	// A new plan's own records, written before its plan (as a crash
	// between two saves could leave them), survive its SavePlan.
	b.saveCheckpoint(t, "r1", testCheckpoint("new", 1, false))
	b.markDone(t, "r1", "new", 2)
	b.savePlan(t, testPlan("r1", "new"))

	if got, want := b.keys(t, "r1"), []string{"checkpoint/0001@new", "done/0002@new", "plan@new"}; !slices.Equal(got, want) {
		t.Errorf("r1's records after a new plan = %v; want %v", got, want)
	}
	if got, want := b.keys(t, "r2"), []string{"checkpoint/0000@old", "plan@old"}; !slices.Equal(got, want) {
		t.Errorf("r2's records after r1's new plan = %v; want %v", got, want)
	}
	if cp, err := b.store.LoadCheckpoint(b.ctx, "r1", 0); err != nil || cp != nil {
		t.Errorf("LoadCheckpoint of the old plan's partition = %+v, %v; want nil, nil", cp, err)
	}
	if m, err := b.store.LoadReplay(b.ctx, "r1"); err != nil || m != nil {
		t.Errorf("LoadReplay of the old plan's manifest = %+v, %v; want nil, nil", m, err)
	}

	// The same plan saved again keeps everything.
	b.savePlan(t, testPlan("r1", "new"))
	if got, want := b.keys(t, "r1"), []string{"checkpoint/0001@new", "done/0002@new", "plan@new"}; !slices.Equal(got, want) {
		t.Errorf("r1's records after its plan is saved again = %v; want %v", got, want)
	}
}

// TestStore_SaveCheckpoint checks the checkpoint's round trip, a
// replacement, and that a partition without one is nil.
func TestStore_SaveCheckpoint(t *testing.T) {
	t.Parallel()
	b := newStoreBundle(t)
	if cp, err := b.store.LoadCheckpoint(b.ctx, "r1", 3); err != nil || cp != nil {
		t.Fatalf("LoadCheckpoint of a partition without one = %+v, %v; want nil, nil", cp, err)
	}
	after := int64(7)
	want := testCheckpoint("c1", 3, false)
	want.After = &after
	b.saveCheckpoint(t, "r1", want)
	got, err := b.store.LoadCheckpoint(b.ctx, "r1", 3)
	if err != nil {
		t.Fatal(err)
	}
	if got.Commit != "c1" || got.Partition != 3 || got.Next != want.Next || got.After == nil || *got.After != 7 ||
		got.Done || got.Seq != 3 || got.Rows != want.Rows || !got.Updated.Equal(want.Updated) {
		t.Errorf("LoadCheckpoint = %+v; want %+v", got, want)
	}

	next := testCheckpoint("c1", 3, true)
	next.Seq = 4
	b.saveCheckpoint(t, "r1", next)
	got, err = b.store.LoadCheckpoint(b.ctx, "r1", 3)
	if err != nil || !got.Done || got.Seq != 4 || got.After != nil {
		t.Errorf("LoadCheckpoint after a replacement = %+v, %v; want Done, Seq 4, no After", got, err)
	}
	// The done column is what the barrier counts (see countDone): it must
	// follow the checkpoint's Done.
	var done bool
	if err := b.pool.QueryRow(b.ctx, "SELECT done FROM mr_state WHERE run = 'r1' AND key = $1", checkpointKey(3)).Scan(&done); err != nil || !done {
		t.Errorf("mr_state.done of the ended partition = %v, %v; want true", done, err)
	}
	if cp, err := b.store.LoadCheckpoint(b.ctx, "r2", 3); err != nil || cp != nil {
		t.Errorf("LoadCheckpoint of another run = %+v, %v; want nil, nil", cp, err)
	}
}

// TestStore_BucketsDone checks that done markers list in bucket order,
// not the order they were marked in, and only under the Commit asked for.
// TestStore_LoadCheckpoints loads all of a run's checkpoints in one query,
// as one LoadCheckpoint each would: none where a partition has none, and
// nothing of another run or of a partition past the plan's.
func TestStore_LoadCheckpoints(t *testing.T) {
	t.Parallel()
	b := newStoreBundle(t)
	for _, part := range []int{0, 2, 5} {
		b.saveCheckpoint(t, "r1", testCheckpoint("c1", part, part == 2))
	}
	b.saveCheckpoint(t, "r2", testCheckpoint("c1", 1, false))
	cps, errs, err := b.store.LoadCheckpoints(b.ctx, "r1", 4)
	if err != nil || len(cps) != 4 || len(errs) != 4 {
		t.Fatalf("LoadCheckpoints(r1, 4) = %d checkpoints, %d errors, %v", len(cps), len(errs), err)
	}
	for part := range 4 {
		one, oneErr := b.store.LoadCheckpoint(b.ctx, "r1", part)
		if oneErr != nil || errs[part] != nil || !reflect.DeepEqual(one, cps[part]) {
			t.Errorf("partition %d: LoadCheckpoints gives %+v, %v; LoadCheckpoint %+v, %v", part, cps[part], errs[part], one, oneErr)
		}
	}
	if cps[1] != nil || cps[3] != nil || cps[0] == nil || cps[2] == nil || !cps[2].Done {
		t.Errorf("LoadCheckpoints(r1, 4) = %v; want partitions 0 and 2 (done), none for 1 and 3", cps)
	}
}

func TestStore_BucketsDone(t *testing.T) {
	t.Parallel()
	b := newStoreBundle(t)
	if got, err := b.store.BucketsDone(b.ctx, "r1", "c1"); err != nil || len(got) != 0 {
		t.Fatalf("BucketsDone of a run without markers = %v, %v; want none", got, err)
	}
	for _, bucket := range []int{7, 0, 9999, 12, 3} { // 9999: the last of --buckets 10000
		b.markDone(t, "r1", "c1", bucket)
	}
	b.markDone(t, "r1", "c1", 3) // again: still once
	b.markDone(t, "r1", "c0", 5)
	b.markDone(t, "r2", "c1", 9)
	if got, want := mustBucketsDone(t, b, "r1", "c1"), []int{0, 3, 7, 12, 9999}; !slices.Equal(got, want) {
		t.Errorf("BucketsDone(r1, c1) = %v; want %v", got, want)
	}
	if got, want := mustBucketsDone(t, b, "r1", "c0"), []int{5}; !slices.Equal(got, want) {
		t.Errorf("BucketsDone(r1, c0) = %v; want %v", got, want)
	}
	if got, want := mustBucketsDone(t, b, "r2", "c1"), []int{9}; !slices.Equal(got, want) {
		t.Errorf("BucketsDone(r2, c1) = %v; want %v", got, want)
	}
	// A marker changed outside mr does not count: the sink's record says
	// whether the bucket is applied, and its reduce task marks it again.
	if _, err := b.pool.Exec(b.ctx, "UPDATE mr_state SET body = overlay(body placing '9' from 12 for 1) WHERE run = 'r1' AND key = $1", doneKey(7)); err != nil {
		t.Fatal(err)
	}
	if got, want := mustBucketsDone(t, b, "r1", "c1"), []int{0, 3, 12, 9999}; !slices.Equal(got, want) {
		t.Errorf("BucketsDone(r1, c1) with bucket 7's marker damaged = %v; want %v", got, want)
	}
}

func mustBucketsDone(t *testing.T, b *storeBundle, run, commit string) []int {
	t.Helper()
	got, err := b.store.BucketsDone(b.ctx, run, commit)
	if err != nil {
		t.Fatalf("BucketsDone(%s, %s): %v", run, commit, err)
	}
	return got
}

// TestStore_SaveReplay checks the replay manifest's round trip and that a
// run without one is nil.
func TestStore_SaveReplay(t *testing.T) {
	t.Parallel()
	b := newStoreBundle(t)
	if m, err := b.store.LoadReplay(b.ctx, "r1"); err != nil || m != nil {
		t.Fatalf("LoadReplay of a run without a manifest = %+v, %v; want nil, nil", m, err)
	}
	for gen := 1; gen <= 2; gen++ {
		want := &mapreduce.ReplayManifest{Commit: "c1", Generation: gen, Cursors: []int64{3, 9, int64(10 * gen)}}
		if err := b.store.SaveReplay(b.ctx, "r1", want); err != nil {
			t.Fatal(err)
		}
		got, err := b.store.LoadReplay(b.ctx, "r1")
		if err != nil {
			t.Fatal(err)
		}
		if got.Commit != want.Commit || got.Generation != gen || !slices.Equal(got.Cursors, want.Cursors) {
			t.Errorf("LoadReplay = %+v; want %+v", got, want)
		}
	}
}

// TestStore_Runs checks that Runs lists the runs with a plan, in order,
// and not a run that has state but no plan.
func TestStore_Runs(t *testing.T) {
	t.Parallel()
	b := newStoreBundle(t)
	if got, err := b.store.Runs(b.ctx); err != nil || len(got) != 0 {
		t.Fatalf("Runs of an empty store = %v, %v; want none", got, err)
	}
	b.savePlan(t, testPlan("zeta", "c1"))
	b.savePlan(t, testPlan("alpha", "c2"))
	b.saveCheckpoint(t, "orphan", testCheckpoint("c3", 0, false))
	got, err := b.store.Runs(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"alpha", "zeta"}; !slices.Equal(got, want) {
		t.Errorf("Runs = %v; want %v", got, want)
	}
}

// TestStore_Lock checks that the run lock keeps a second holder out,
// whatever pool connection it comes through, until it is released, and
// that it is per run.
func TestStore_Lock(t *testing.T) {
	t.Parallel()
	b := newStoreBundle(t)
	// A second Store on its own pool, as another process would be.
	other := &Store{pool: pgtest.PoolFor(t, b.pool.Config().ConnString())}

	unlock, err := b.store.Lock(b.ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*Store{"SameStore": b.store, "OtherStore": other} {
		if u, err := s.Lock(b.ctx, "r1"); !errors.Is(err, mapreduce.ErrRunInUse) {
			if u != nil {
				u()
			}
			t.Errorf("%s: second Lock of r1 = %v; want an error wrapping mapreduce.ErrRunInUse", name, err)
		} else if !strings.Contains(err.Error(), "r1") {
			t.Errorf("%s: error %q does not name the run", name, err)
		}
	}
	unlock2, err := other.Lock(b.ctx, "r2")
	if err != nil {
		t.Fatalf("Lock of another run while r1 is held: %v", err)
	}
	if err := unlock2(); err != nil {
		t.Fatal(err)
	}

	if err := unlock(); err != nil {
		t.Fatalf("unlock: %v", err)
	}
	unlock, err = other.Lock(b.ctx, "r1")
	if err != nil {
		t.Fatalf("Lock of r1 after its unlock: %v", err)
	}
	if _, err := b.store.Lock(b.ctx, "r1"); !errors.Is(err, mapreduce.ErrRunInUse) {
		t.Errorf("Lock of r1 taken again by the other store = %v; want an error wrapping mapreduce.ErrRunInUse", err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
}

// TestStore_Damaged checks that a record changed outside mr, in its body
// or its sum, is found on load as ErrDamaged naming the record, so that
// the engine heals it rather than misreads it (a flipped digit in a
// cursor parses as well as the true one).
func TestStore_Damaged(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		damage string // SQL run on the record: $1 its run, $2 its key, $3 the sum of "not json"
		want   string
	}{
		{"Body", "UPDATE mr_state SET body = overlay(body placing 'X'::bytea from 5 for 1) WHERE run = $1 AND key = $2", "fails its checksum"},
		{"Sum", "UPDATE mr_state SET sum = sum # 1 WHERE run = $1 AND key = $2", "fails its checksum"},
		{"Truncated", "UPDATE mr_state SET body = substring(body from 1 for 10) WHERE run = $1 AND key = $2", "fails its checksum"},
		// A body whose sum matches but that is no JSON of the record's
		// type: damage that a checksum alone would miss.
		{"Resealed", "UPDATE mr_state SET body = 'not json', sum = $3 WHERE run = $1 AND key = $2", "does not parse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newStoreBundle(t)
			b.savePlan(t, testPlan("r1", "c1"))
			b.saveCheckpoint(t, "r1", testCheckpoint("c1", 3, false))
			if err := b.store.SaveReplay(b.ctx, "r1", &mapreduce.ReplayManifest{Commit: "c1", Generation: 1}); err != nil {
				t.Fatal(err)
			}
			loads := []struct {
				key  string
				load func() (any, error)
			}{
				{planKey, func() (any, error) { return b.store.LoadPlan(b.ctx, "r1") }},
				{checkpointKey(3), func() (any, error) { return b.store.LoadCheckpoint(b.ctx, "r1", 3) }},
				{checkpointKey(3), func() (any, error) {
					cps, errs, err := b.store.LoadCheckpoints(b.ctx, "r1", 4)
					if err != nil {
						return nil, err
					}
					return cps[3], errs[3]
				}},
				{replayKey, func() (any, error) { return b.store.LoadReplay(b.ctx, "r1") }},
			}
			damaged := map[string]bool{}
			for _, l := range loads {
				args := []any{"r1", l.key}
				if strings.Contains(tc.damage, "$3") {
					args = append(args, int64(xxhash.Sum64String("not json")))
				}
				if !damaged[l.key] { // once: flipping a bit twice would heal it
					damaged[l.key] = true
					tag, err := b.pool.Exec(b.ctx, tc.damage, args...)
					if err != nil || tag.RowsAffected() != 1 {
						t.Fatalf("damage %s: %v, %d rows", l.key, err, tag.RowsAffected())
					}
				}
				_, err := l.load()
				if !errors.Is(err, mapreduce.ErrDamaged) {
					t.Errorf("load of damaged %s = %v; want an error wrapping mapreduce.ErrDamaged", l.key, err)
					continue
				}
				if msg := err.Error(); !strings.Contains(msg, "record "+l.key+" of run r1") || !strings.Contains(msg, tc.want) {
					t.Errorf("load of damaged %s: error %q should name the record and say it %s", l.key, msg, tc.want)
				}
			}
		})
	}
}
