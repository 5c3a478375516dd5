package benchmarks

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// dbbenchShown is how many differing rows a failed check prints.
const dbbenchShown = 5

// check fails the test unless mr's answer to q has the same groups as
// PostgreSQL's, with agreeing values (see dbCol), showing the first few
// rows that differ, and PostgreSQL's column types. A type mismatch alone
// lets the values be compared too, so that one run reports both.
func (a *dbAsker) check(q dbQuestion) {
	a.tb.Helper()
	pgRel := a.pgTable(q)
	if q.pgAnswer != "" {
		pgRel = fmt.Sprintf(q.pgAnswer, pgRel)
	}
	a.checkTypes(q, pgRel)
	query, names := diffQuery(q, pgRel, a.mrTable(q))
	rows, err := a.conn.Query(context.Background(), query)
	if err != nil {
		a.tb.Fatalf("%s: comparing the answers: %v\n%s", q.name, err, query)
	}
	var total int64
	var shown []string
	for rows.Next() {
		vals := make([]*string, len(names))
		dest := []any{&total}
		for i := range vals {
			dest = append(dest, &vals[i])
		}
		if err := rows.Scan(dest...); err != nil {
			a.tb.Fatal(err)
		}
		var line []string
		for i, v := range vals {
			s := "NULL"
			if v != nil {
				s = *v
			}
			line = append(line, names[i]+"="+s)
		}
		shown = append(shown, "  "+strings.Join(line, " "))
	}
	if err := rows.Err(); err != nil {
		a.tb.Fatalf("%s: comparing the answers: %v", q.name, err)
	}
	if total > 0 {
		a.tb.Fatalf("%s: mr's answer differs from PostgreSQL's in %d groups (pg_… PostgreSQL, mr_… mr; a missing group is all NULL); the first %d:\n%s\nmr: %s",
			q.name, total, len(shown), strings.Join(shown, "\n"), fmt.Sprintf(q.mr, a.data.name))
	}
}

// diffQuery returns a query of the groups where mr's table and pgRel
// disagree, with their number in each row, and the names of the other
// columns: q's keys (from whichever side has the group), then each
// aggregate column of PostgreSQL and of mr, all as text.
func diffQuery(q dbQuestion, pgRel, mrTable string) (string, []string) {
	var sel, on, agree, names []string
	for _, k := range q.keys {
		id := pgx.Identifier{k}.Sanitize()
		sel = append(sel, fmt.Sprintf("coalesce(p.%[1]s, m.%[1]s)::text", id))
		on = append(on, fmt.Sprintf("p.%[1]s = m.%[1]s", id))
		names = append(names, k)
	}
	first := pgx.Identifier{q.keys[0]}.Sanitize()
	agree = append(agree, "p."+first+" IS NOT NULL", "m."+first+" IS NOT NULL")
	for _, c := range q.cols {
		id := pgx.Identifier{c.name}.Sanitize()
		sel = append(sel, "p."+id+"::text", "m."+id+"::text")
		names = append(names, "pg_"+c.name, "mr_"+c.name)
		if c.rel == 0 {
			agree = append(agree, fmt.Sprintf("p.%[1]s::text IS NOT DISTINCT FROM m.%[1]s::text", id))
			continue
		}
		agree = append(agree, fmt.Sprintf("coalesce(p.%[1]s IS NULL AND m.%[1]s IS NULL OR abs(m.%[1]s - p.%[1]s) <= %[2]s * abs(p.%[1]s) + %[3]s, false)",
			id, strconv.FormatFloat(c.rel, 'g', -1, 64), strconv.FormatFloat(c.abs, 'g', -1, 64)))
	}
	// count(*) OVER () counts every differing group before LIMIT keeps
	// the first few.
	return fmt.Sprintf(`SELECT count(*) OVER (), %s
		FROM %s p FULL JOIN %s m ON %s
		WHERE NOT (%s)
		ORDER BY %s
		LIMIT %d`,
		strings.Join(sel, ", "), pgRel, pgx.Identifier{mrTable}.Sanitize(), strings.Join(on, " AND "),
		strings.Join(agree, " AND "), strings.Join(sel[:len(q.keys)], ", "), dbbenchShown), names
}

// checkTypes marks the test failed unless mr's columns have the types of
// PostgreSQL's, as the rollup contract promises (sum of integer is
// bigint, avg of integer numeric, median double precision …).
func (a *dbAsker) checkTypes(q dbQuestion, pgRel string) {
	a.tb.Helper()
	pgTypes, mrTypes := a.columnTypes(q, pgRel), a.columnTypes(q, pgx.Identifier{a.mrTable(q)}.Sanitize())
	if pgTypes != mrTypes {
		a.tb.Errorf("%s: mr's columns are (%s), PostgreSQL's (%s)", q.name, mrTypes, pgTypes)
	}
}

// columnTypes returns the types of q's columns in rel, keys first, as
// "name type, …".
func (a *dbAsker) columnTypes(q dbQuestion, rel string) string {
	a.tb.Helper()
	var exprs []string
	for _, c := range q.keys {
		exprs = append(exprs, fmt.Sprintf("%s || ' ' || pg_typeof(%s)", pgQuote(c), pgx.Identifier{c}.Sanitize()))
	}
	for _, c := range q.cols {
		exprs = append(exprs, fmt.Sprintf("%s || ' ' || pg_typeof(%s)", pgQuote(c.name), pgx.Identifier{c.name}.Sanitize()))
	}
	query := fmt.Sprintf("SELECT concat_ws(', ', %s) FROM %s r LIMIT 1", strings.Join(exprs, ", "), rel)
	var types string
	if err := a.conn.QueryRow(context.Background(), query).Scan(&types); err != nil {
		a.tb.Fatalf("%s: the column types of %s: %v", q.name, rel, err)
	}
	return types
}

// pgQuote is s as a SQL string literal.
func pgQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
