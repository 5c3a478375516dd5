package sources_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/mrengine/mr/internal/crashpoint"
	"github.com/mrengine/mr/internal/pgtest"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/mapreduce/mapreducetest"
	"github.com/mrengine/mr/rollup"
)

// TestPostgres_RunSessionsNamed runs a rollup and looks at pg_stat_activity
// while it reads: the run's sessions are named mr/<run id>, so that an
// operator can tell what they are.
func TestPostgres_RunSessionsNamed(t *testing.T) {
	t.Parallel()
	h := mapreducetest.New(t, mapreducetest.Options{DSN: pgtest.DSN(t)})
	tab := mapreducetest.Table{Name: "named", Columns: []mapreducetest.Column{
		{Name: "id", Type: "bigint primary key"}, {Name: "grp", Type: "text not null"},
	}}
	for id := int64(1); id <= 50; id++ {
		tab.Rows = append(tab.Rows, []any{id, "g"})
	}
	h.Load(t, tab)
	def := h.Rollup(t, "SELECT grp, count(*) AS n FROM named GROUP BY grp", rollup.Options{Into: "named_counts", PushDown: rollup.PushDownOff})
	var mu sync.Mutex
	var names []string
	ctx := crashpoint.WithHook(context.Background(), func(point string) {
		if point != crashpoint.MapSpilled {
			return
		}
		rows := h.Query(t, "SELECT application_name FROM pg_stat_activity WHERE application_name LIKE 'mr/%'")
		mu.Lock()
		defer mu.Unlock()
		for _, r := range rows {
			names = append(names, r[0].(string))
		}
	})
	s, err := mapreduce.Run(ctx, def, h.Source(), h.Sink(), mapreducetest.Config(t))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(names, "mr/"+s.RunID) {
		t.Errorf("pg_stat_activity during the run named %v, not mr/%s", names, s.RunID)
	}
}
