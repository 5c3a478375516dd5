package sinks_test

import (
	"context"
	"errors"
	"testing"

	"github.com/mrengine/mr/internal/crashpoint"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/mapreduce/mapreducetest"
	mrrollup "github.com/mrengine/mr/rollup"
	"github.com/mrengine/mr/sinks"
)

// TestRun_SecondRunRefusedBeforeMap stops one rollup just before it swaps
// its output in, then starts another rollup into the same table: the
// second is refused before it reads a row, and once the first finishes
// the second runs.
func TestRun_SecondRunRefusedBeforeMap(t *testing.T) {
	t.Parallel()
	h := mapreducetest.New(t, mapreducetest.Options{})
	tab := mapreducetest.Table{Name: "orders", Columns: []mapreducetest.Column{
		{Name: "id", Type: "bigint primary key"}, {Name: "customer", Type: "bigint not null"}, {Name: "total", Type: "bigint not null"},
	}}
	for id := int64(1); id <= 40; id++ {
		tab.Rows = append(tab.Rows, []any{id, id % 4, id})
	}
	h.Load(t, tab)
	first := h.Rollup(t, "SELECT customer, sum(total) AS total FROM orders GROUP BY customer", mrrollup.Options{Into: "per_customer"})
	second := h.Rollup(t, "SELECT customer, sum(customer) AS total FROM orders GROUP BY customer", mrrollup.Options{Into: "per_customer"})
	cfg := mapreducetest.Config(t)

	stop := crashpoint.WithHook(context.Background(), func(point string) {
		if point == crashpoint.BeforeSwap {
			panic("stopped before the swap")
		}
	})
	func() {
		defer func() { recover() }() // the hook's panic, a crash where nothing after it runs
		mapreduce.Run(stop, first, h.Source(), h.Sink(), cfg)
		t.Fatal("the first run did not stop before its swap")
	}()

	s, err := mapreduce.Run(context.Background(), second, h.Source(), h.Sink(), cfg)
	var owned *sinks.OwnedError
	if !errors.As(err, &owned) {
		t.Fatalf("second run: %v, want an *sinks.OwnedError", err)
	}
	if s.Read != 0 {
		t.Errorf("the refused run read %d rows", s.Read)
	}

	if _, err := mapreduce.Run(context.Background(), first, h.Source(), h.Sink(), cfg); err != nil {
		t.Fatalf("resuming the first run: %v", err)
	}
	if _, err := mapreduce.Run(context.Background(), second, h.Source(), h.Sink(), cfg); err != nil {
		t.Fatalf("the second run after the first finished: %v", err)
	}
	if got := h.Query(t, "SELECT sum(total) FROM per_customer")[0][0]; got != int64(60) {
		t.Errorf("per_customer holds a total of %v, want the second run's 60", got)
	}
}
