package mapreduce_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/mrengine/mr/internal/crashpoint"
	"github.com/mrengine/mr/internal/pgtest"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/mapreduce/mapreducetest"
)

// tsRows is the fixture of the compound cursor tests: 300 rows, 200 of
// them at one ts (every id not divisible by 3), the rest one per ts, and
// poison rows among both.
func tsRows() mapreducetest.Table {
	tab := mapreducetest.Table{Name: "tsrows", Columns: []mapreducetest.Column{
		{Name: "ts", Type: "bigint not null"},
		{Name: "id", Type: "bigint not null primary key"},
		{Name: "grp", Type: "text"},
		{Name: "amount", Type: "bigint"},
		{Name: "kind", Type: "text"},
	}}
	for id := int64(1); id <= 300; id++ {
		ts := int64(1000)
		if id%3 == 0 {
			ts += id
		}
		kind := "ok"
		if id%37 == 0 || id == 10 {
			kind = "poison"
		}
		tab.Rows = append(tab.Rows, []any{ts, id, fmt.Sprintf("g%02d", id%13), id*5 - 7, kind})
	}
	return tab
}

// TestRun_CompoundCursorResumesMidTimestamp stops a run two commits into
// the 200 rows of one ts and resumes it from its checkpoint: the output
// is the SQL GROUP BY, every row is committed once (the checkpoints' row
// counts prove that none was read twice) and every poison row is one dead
// letter that names its pair.
func TestRun_CompoundCursorResumesMidTimestamp(t *testing.T) {
	t.Parallel()
	for _, backend := range []struct {
		name string
		opts func(t *testing.T) mapreducetest.Options
	}{
		{"SQLite", func(*testing.T) mapreducetest.Options { return mapreducetest.Options{} }},
		{"Postgres", func(t *testing.T) mapreducetest.Options { return mapreducetest.Options{DSN: pgtest.DSN(t)} }},
	} {
		t.Run(backend.name, func(t *testing.T) {
			t.Parallel()
			h := mapreducetest.New(t, backend.opts(t))
			h.Load(t, tsRows())
			cfg := mapreducetest.Config(t)
			cfg.Table, cfg.Cursor = "tsrows", "ts,id"
			cfg.ChunkSize, cfg.Workers = 25, 1

			var hits int
			ctx := crashpoint.WithHook(context.Background(), func(name string) {
				if name == crashpoint.MapSpilled {
					if hits++; hits == 3 {
						panic("stop in the map phase")
					}
				}
			})
			s, err := mapreduce.Run(ctx, sumJob(t), h.Source(), h.Sink(), cfg)
			var p *mapreduce.PanicError
			if !errors.As(err, &p) {
				t.Fatalf("run stopped in the map phase returned %v", err)
			}
			ri, err := mapreduce.Inspect(context.Background(), cfg, s.RunID)
			if err != nil {
				t.Fatal(err)
			}
			if ri.Plan.Format != 7 {
				t.Errorf("plan of a compound cursor in format %d, want 7", ri.Plan.Format)
			}
			cp := ri.Checkpoints[0]
			if cp == nil || cp.Seq != 2 || cp.Next != 1000 || cp.After == nil || cp.Rows != 50 {
				t.Fatalf("partition 0 has checkpoint %+v, want two commits of 25 rows into ts 1000", cp)
			}
			// The 50th id at ts 1000: ids not divisible by 3, in order.
			if want := int64(74); *cp.After != want {
				t.Errorf("checkpoint resumes after id %d, want %d", *cp.After, want)
			}

			s, err = mapreduce.Run(context.Background(), sumJob(t), h.Source(), h.Sink(), cfg)
			if err != nil {
				t.Fatalf("resumed run: %v", err)
			}
			want := h.Query(t, "SELECT grp, CAST(sum(amount) AS bigint) FROM tsrows WHERE kind <> 'poison' GROUP BY grp ORDER BY grp")
			got := h.Query(t, "SELECT grp, total FROM sums ORDER BY grp")
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("output\n got %v\nwant %v", got, want)
			}
			ri, err = mapreduce.Inspect(context.Background(), cfg, s.RunID)
			if err != nil {
				t.Fatal(err)
			}
			var rows int64
			for _, cp := range ri.Checkpoints {
				rows += cp.Rows
			}
			if rows != 300 || s.PartitionsResumed != 1 {
				t.Errorf("checkpoints count %d rows, %d partitions resumed; want 300 rows, 1 resumed", rows, s.PartitionsResumed)
			}
			letters, err := mapreduce.DeadLetters(context.Background(), cfg, s.RunID, mapreduce.DeadLetterFilter{})
			if err != nil {
				t.Fatal(err)
			}
			var named, wantNamed []string
			for _, l := range letters {
				if l.Tie == nil {
					t.Fatalf("dead letter %+v names no tie-breaker", l)
				}
				named = append(named, fmt.Sprintf("%d,%d", l.Cursor, *l.Tie))
			}
			for _, row := range tsRows().Rows {
				if row[4] == "poison" {
					wantNamed = append(wantNamed, fmt.Sprintf("%d,%d", row[0], row[1]))
				}
			}
			slices.Sort(named)
			slices.Sort(wantNamed)
			if !slices.Equal(named, wantNamed) {
				t.Errorf("dead letters %v, want %v", named, wantNamed)
			}

			_, err = mapreduce.Replay(context.Background(), sumJob(t), h.Source(), h.Sink(), cfg)
			if err == nil || !strings.Contains(err.Error(), `pages by the compound cursor "ts,id", and mr dlq replay reads rows back by a cursor of one column`) {
				t.Errorf("replay of a compound cursor's run: %v", err)
			}
		})
	}
}

// TestRun_CompoundCursorRefusals: what a compound cursor cannot do fails
// before anything runs, with a message that says what to change.
func TestRun_CompoundCursorRefusals(t *testing.T) {
	t.Parallel()
	h := mapreducetest.New(t, mapreducetest.Options{})
	h.Load(t, tsRows())
	for _, tt := range []struct {
		name   string
		change func(*mapreduce.Config)
		want   string
	}{
		{"Incremental", func(c *mapreduce.Config) { c.Incremental = true },
			`cursor "ts,id": --incremental needs a cursor of one integer column that a sequence fills`},
		{"ThreeColumns", func(c *mapreduce.Config) { c.Cursor = "ts,id,grp" },
			`a compound cursor names two columns, order and tie-breaker`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := mapreducetest.Config(t)
			cfg.Table, cfg.Cursor = "tsrows", "ts,id"
			tt.change(&cfg)
			_, err := mapreduce.Run(context.Background(), sumJob(t), h.Source(), h.Sink(), cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run: %v\nwant …%s…", err, tt.want)
			}
		})
	}
}

// TestRun_CompoundCursorMapOnly crashes a map-only run over tsRows on
// either side of a chunk's sink commit, again and again, each attempt
// resuming from the chunk its checkpoint names as pending: its After
// must count once the sink says the chunk committed, so that the rows of
// ts 1000 are read once in all and each poison row is one dead letter.
func TestRun_CompoundCursorMapOnly(t *testing.T) {
	t.Parallel()
	for _, point := range []string{crashpoint.ChunkIntent, crashpoint.ChunkApplied} {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			h := mapreducetest.New(t, mapreducetest.Options{})
			h.Load(t, tsRows())
			cfg := mapreducetest.Config(t)
			cfg.Table, cfg.Cursor = "tsrows", "ts,id"
			cfg.ChunkSize, cfg.Workers, cfg.Partitions = 20, 1, 2
			var s mapreduce.Summary
			stops, midTS := 0, false
			for attempt := 0; ; attempt++ {
				if attempt > 100 {
					t.Fatalf("the run did not finish after %d stops", stops)
				}
				stopped := false
				var err error
				s, err = mapreduce.Run(stopAtPoint(point, 3, &stopped), latestJob(t), h.Source(), h.Sink(), cfg)
				if !stopped {
					if err != nil {
						t.Fatal(err)
					}
					break
				}
				stops++
				ri, err := mapreduce.Inspect(context.Background(), cfg, s.RunID)
				if err != nil {
					t.Fatal(err)
				}
				cp := ri.Checkpoints[0]
				midTS = midTS || cp != nil && cp.Pending != nil && cp.Pending.After != nil && cp.Pending.Next == 1000
			}
			if stops < 3 || !midTS {
				t.Fatalf("the run stopped %d times, mid-timestamp %t; the test needs more", stops, midTS)
			}
			ri, err := mapreduce.Inspect(context.Background(), cfg, s.RunID)
			if err != nil {
				t.Fatal(err)
			}
			var rows int64
			for _, cp := range ri.Checkpoints {
				rows += cp.Rows
			}
			if rows != 300 {
				t.Errorf("checkpoints count %d rows, want each of the 300 once", rows)
			}
			letters, err := mapreduce.DeadLetters(context.Background(), cfg, s.RunID, mapreduce.DeadLetterFilter{})
			if err != nil {
				t.Fatal(err)
			}
			var ties []int64
			for _, l := range letters {
				ties = append(ties, *l.Tie)
			}
			slices.Sort(ties)
			var want []int64
			for _, row := range tsRows().Rows {
				if row[4] == "poison" {
					want = append(want, row[1].(int64))
				}
			}
			if !slices.Equal(ties, want) {
				t.Errorf("dead letters of ids %v, want %v", ties, want)
			}
		})
	}
}
