package sinks_test

import (
	"context"
	"fmt"
	"net/url"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/mrengine/mr/internal/pgtest"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/mapreduce/mapreducetest"
	mrrollup "github.com/mrengine/mr/rollup"
)

// TestRun_SearchPathInIdentity runs one rollup command twice with the same
// URL, while the role's search_path (ALTER ROLE … SET, which the URL does
// not show) points at another schema holding another table of the same
// name: they are two runs, and the second aggregates its own schema's
// rows, where it used to resume the first run's state.
func TestRun_SearchPathInIdentity(t *testing.T) {
	t.Parallel()
	admin := pgtest.PoolFor(t, pgtest.AdminDSN(t))
	schema, _ := pgtest.Schema(t) // a unique name, for the role and its schemas
	role, a, b := schema+"_role", schema+"_a", schema+"_b"
	exec := func(sql string) {
		t.Helper()
		if _, err := admin.Exec(context.WithoutCancel(t.Context()), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	id := func(s string) string { return pgx.Identifier{s}.Sanitize() }
	exec("CREATE ROLE " + id(role) + " LOGIN SUPERUSER")
	exec("CREATE SCHEMA " + id(a) + " AUTHORIZATION " + id(role))
	exec("CREATE SCHEMA " + id(b) + " AUTHORIZATION " + id(role))
	t.Cleanup(func() {
		exec("DROP SCHEMA " + id(a) + ", " + id(b) + " CASCADE")
		exec("DROP ROLE " + id(role))
	})
	u, err := url.Parse(pgtest.AdminDSN(t))
	if err != nil || u.User == nil {
		t.Skipf("needs pgtest's postgres:// URL, got %v", err)
	}
	u.User = url.User(role)
	cfg := mapreducetest.Config(t) // one work directory for both runs
	var ids []string
	for i, s := range []string{a, b} {
		exec("ALTER ROLE " + id(role) + " SET search_path = " + id(s))
		h := mapreducetest.New(t, mapreducetest.Options{DSN: u.String()})
		tab := mapreducetest.Table{Name: "items", Columns: []mapreducetest.Column{
			{Name: "id", Type: "bigint primary key"}, {Name: "k", Type: "bigint not null"},
		}}
		for n := range 10 * (i + 1) {
			tab.Rows = append(tab.Rows, []any{int64(n + 1), int64(n % 2)})
		}
		h.Load(t, tab)
		def := h.Rollup(t, "SELECT k, count(*) AS n FROM items GROUP BY k", mrrollup.Options{Into: "counts"})
		sum, err := mapreduce.Run(context.Background(), def, h.Source(), h.Sink(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, sum.RunID)
		if got := fmt.Sprint(h.Query(t, "SELECT k, n FROM counts ORDER BY k")); got != fmt.Sprintf("[[0 %d] [1 %d]]", 5*(i+1), 5*(i+1)) {
			t.Errorf("counts in %s = %s", s, got)
		}
	}
	if ids[0] == ids[1] {
		t.Errorf("both search paths gave run %s", ids[0])
	}
}
