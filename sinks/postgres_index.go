package sinks

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mrengine/mr/mapreduce"
)

// A staging table is filled without indexes and gets them once, at the
// swap: building an index over the rows is cheaper than keeping it up to
// date row by row. Measured on PostgreSQL 15 (fsync on, 2 shared CPUs)
// with 3.7M daily_rollup rows in 16 runs each sorted by key, as buckets
// arrive: COPY into the table with its primary key took 12.5 s, COPY into
// the bare table 4.6 s and building the key after it 2.5 s.

// stageIndex is an index of the output table, to build on its staging
// table.
type stageIndex struct {
	name  string // in the output table
	shape string // see indexShape
	// build makes the index on the staging table (of any name: the swap
	// gives it name); comment gives it the old one's comments once it has
	// its name, or is empty.
	build, comment string
}

// outputIndexes returns the indexes of the output table oid, in order of
// creation, with the statements that build each one on the table qstage.
// An index that backs a constraint (primary key, unique, exclusion) is
// built by adding the constraint; any other is built from its definition,
// which pg_get_indexdef writes as CREATE [UNIQUE] INDEX name ON [ONLY]
// schema.table USING … (see indexPrefixExpr), of which the part from
// USING on names neither.
func outputIndexes(ctx context.Context, tx pgx.Tx, oid uint32, qstage string) ([]stageIndex, error) {
	rows, err := tx.Query(ctx, `SELECT c.relname::text, `+indexShapeExpr+`,
			CASE WHEN con.oid IS NOT NULL THEN 'ALTER TABLE '||$2::text||' ADD '||pg_get_constraintdef(con.oid) END,
			CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END,
			pg_get_indexdef(i.indexrelid),
			`+indexPrefixExpr+`,
			concat_ws('; ',
				(SELECT format('COMMENT ON INDEX %I.%I IS %L', n.nspname, c.relname, d) FROM obj_description(i.indexrelid, 'pg_class') d WHERE d IS NOT NULL),
				(SELECT format('COMMENT ON CONSTRAINT %I ON %I.%I IS %L', con.conname, n.nspname, t.relname, d) FROM obj_description(con.oid, 'pg_constraint') d WHERE d IS NOT NULL))
		FROM pg_catalog.pg_index i
		JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
		JOIN pg_catalog.pg_class t ON t.oid = i.indrelid
		JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
		LEFT JOIN pg_catalog.pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x')
		WHERE i.indrelid = $1
		ORDER BY i.indexrelid`, oid, qstage)
	if err != nil {
		return nil, err
	}
	var indexes []stageIndex
	var x stageIndex
	var constraint *string
	var unique, def, prefix string
	_, err = pgx.ForEachRow(rows, []any{&x.name, &x.shape, &constraint, &unique, &def, &prefix, &x.comment}, func() error {
		switch rest, ok := strings.CutPrefix(def, prefix); {
		case constraint != nil:
			x.build = *constraint
		case ok:
			x.build = "CREATE " + unique + "INDEX ON " + qstage + " " + rest
		default:
			return fmt.Errorf("index %s cannot be built on the staging table: its definition %q does not begin %q", x.name, def, prefix)
		}
		indexes = append(indexes, x)
		return nil
	})
	return indexes, err
}

// buildIndexes gives the staging table (oid, quoted qstage) the indexes
// of the output table (old, or the key alone if there is none) that it
// lacks, comparing by shape, so that a build that was cut short, or one
// done by an earlier call, is not done twice.
func buildIndexes(ctx context.Context, tx pgx.Tx, t mapreduce.OutputTable, old, oid uint32, qstage string) ([]stageIndex, error) {
	have, err := indexNames(ctx, tx, oid)
	if err != nil {
		return nil, err
	}
	if old == 0 { // dropped during the run: the key, as Prepare makes it
		if len(have) > 0 {
			return nil, nil
		}
		var keys []string
		for _, f := range t.Keys {
			keys = append(keys, ident(f.Name))
		}
		key := stageIndex{name: "(the key)", build: "ALTER TABLE " + qstage + " ADD PRIMARY KEY (" + strings.Join(keys, ", ") + ")"}
		if _, err := tx.Exec(ctx, key.build); err != nil {
			return nil, indexError(key, t, qstage, err)
		}
		return nil, nil
	}
	want, err := outputIndexes(ctx, tx, old, qstage)
	if err != nil {
		return nil, err
	}
	for _, x := range want {
		if names := have[x.shape]; len(names) > 0 {
			have[x.shape] = names[1:]
			continue
		}
		if _, err := tx.Exec(ctx, x.build); err != nil {
			return nil, indexError(x, t, qstage, err)
		}
	}
	return want, nil
}

// indexError wraps the failed build of index x, explaining a unique (or
// exclusion) index that the run's output breaks.
func indexError(x stageIndex, t mapreduce.OutputTable, qstage string, err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23505" && pgErr.Code != "23P01" { // unique_violation, exclusion_violation
		return fmt.Errorf("build index %s of table %s on its staging table %s: %w", x.name, t.Name, qstage, err)
	}
	return fmt.Errorf("the run's output, in staging table %s, breaks unique index %s of table %s (%s): "+
		"if the index is on other columns than the job's key, drop it or change the job; "+
		"if it is the key's, something other than this run wrote to the staging table: run again with --fresh: %w",
		qstage, x.name, t.Name, pgErr.Detail, err)
}

// indexNames returns the names of the indexes of the table oid by what
// they index (see indexShape), in order of creation.
func indexNames(ctx context.Context, tx pgx.Tx, oid uint32) (map[string][]string, error) {
	rows, err := tx.Query(ctx, indexShape+` ORDER BY i.indexrelid`, oid)
	if err != nil {
		return nil, err
	}
	names := map[string][]string{}
	var name, shape string
	_, err = pgx.ForEachRow(rows, []any{&name, &shape}, func() error {
		names[shape] = append(names[shape], name)
		return nil
	})
	return names, err
}

// indexShape selects the indexes of a table ($1): each one's name, and
// what it indexes: its kind, and its definition from USING on (method,
// columns, operator classes, INCLUDE, predicate), which names neither the
// index nor the table.
const indexShape = `SELECT c.relname::text, ` + indexShapeExpr + `
	FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1`

// indexShapeExpr is indexShape's shape of the index i (of pg_class row
// c): its kind, and pg_get_indexdef's text after indexPrefixExpr.
const indexShapeExpr = `concat_ws(' ', i.indisprimary, i.indisunique, i.indisexclusion, substr(pg_get_indexdef(i.indexrelid), length(` + indexPrefixExpr + `) + 1))`

// indexPrefixExpr is how pg_get_indexdef begins the definition of the
// index i (of pg_class row c), up to USING: CREATE [UNIQUE] INDEX name ON
// [ONLY] schema.table, with quote_identifier's quoting, which format's %I
// shares. Cutting it off by its length, not at the first " USING ", keeps
// names that hold those words out of the shape.
const indexPrefixExpr = `format('CREATE %sINDEX %I ON %s%s ', CASE WHEN i.indisunique THEN 'UNIQUE ' END, c.relname,
	CASE WHEN c.relkind = 'I' THEN 'ONLY ' END,
	(SELECT format('%I.%I', s.nspname, r.relname) FROM pg_catalog.pg_class r
		JOIN pg_catalog.pg_namespace s ON s.oid = r.relnamespace WHERE r.oid = i.indrelid))`

// renameIndexes gives the indexes of the renamed staging table (oid) the
// names of the old table's indexes (old, as outputIndexes returned them)
// that index the same, by shape: buildIndexes let PostgreSQL name them
// after the staging table, and without this every run would leave new
// names, and the key constraint with them (renaming an index renames its
// constraint). An index without a match keeps its name.
func renameIndexes(ctx context.Context, tx pgx.Tx, n names, oid uint32, old []stageIndex) error {
	byShape := map[string][]string{}
	for _, x := range old {
		byShape[x.shape] = append(byShape[x.shape], x.name)
	}
	rows, err := tx.Query(ctx, indexShape+` ORDER BY i.indexrelid`, oid)
	if err != nil {
		return err
	}
	type index struct{ name, shape string }
	indexes, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (index, error) {
		var i index
		return i, row.Scan(&i.name, &i.shape)
	})
	if err != nil {
		return err
	}
	for _, i := range indexes {
		names := byShape[i.shape]
		if len(names) == 0 {
			continue
		}
		byShape[i.shape] = names[1:]
		if names[0] == i.name {
			continue
		}
		if _, err := tx.Exec(ctx, "ALTER INDEX "+pgx.Identifier{n.schema, i.name}.Sanitize()+" RENAME TO "+ident(names[0])); err != nil {
			return err
		}
	}
	return nil
}
