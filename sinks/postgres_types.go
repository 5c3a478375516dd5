package sinks

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/mrengine/mr/mapreduce"
)

// pgColumnType is a column's type: its pg_type oid and type modifier, and
// its name as format_type writes it ("character varying(3)").
type pgColumnType struct {
	oid  uint32
	mod  int32
	name string
}

// postgresHolders are the column types, as format_type names them, that
// hold every value of a field type exactly, besides the field's own (see
// postgresType); an array field takes arrays of them. A column of another
// type would round (real for a bigint: 16777217 becomes 16777216), or fail
// at the first bucket, after the whole map phase (smallint, varchar(3)),
// so Prepare refuses it.
//
// Integers fit numeric, which is exact. Decimals take numeric without a
// precision or scale only: a scale rounds digits away and a precision
// overflows, and which values a job's decimals take cannot be known before
// the run. Timestamps keep microseconds, which timestamptz(6) holds too;
// timestamp without a time zone is refused, as it would read them back in
// the session's time zone. double precision alone holds every float64:
// float8 to numeric keeps 15 digits.
var postgresHolders = map[mapreduce.Type][]string{
	mapreduce.TypeInt64:     {"bigint", "numeric"},
	mapreduce.TypeFloat64:   {"double precision"},
	mapreduce.TypeString:    {"text", "character varying"},
	mapreduce.TypeBool:      {"boolean"},
	mapreduce.TypeDate:      {"date"},
	mapreduce.TypeTimestamp: {"timestamp with time zone", "timestamp(6) with time zone"},
	mapreduce.TypeDecimal:   {"numeric"},
	mapreduce.TypeBytes:     {"bytea"},
}

// checkTypes returns an error naming every column of cols (the table's,
// by name) whose type neither is the one mr would create for its field
// of t (postgresType, compared as the server resolves it: oid and type
// modifier) nor holds every value of the field's type (postgresHolders),
// with the ALTER TABLE statements that would fix them.
func (s *Postgres) checkTypes(ctx context.Context, tx pgx.Tx, t mapreduce.OutputTable, n names, cols map[string]pgColumnType) (problem, err error) {
	fields := slices.Concat(t.Keys, t.Values)
	want, err := resolveTypes(ctx, tx, fields)
	if err != nil {
		return nil, err
	}
	var wrong, alter []string
	for i, f := range fields {
		have := cols[f.Name]
		if have.oid == want[i].oid && have.mod == want[i].mod {
			continue
		}
		holders := postgresHolders[f.Type]
		if f.Array {
			holders = slices.Clone(holders)
			for j := range holders {
				holders[j] += "[]"
			}
		}
		if slices.Contains(holders, have.name) {
			continue
		}
		wrong = append(wrong, fmt.Sprintf("%q is %s, needs %s", f.Name, have.name, want[i].name))
		alter = append(alter, fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s TYPE %s", n.out.Sanitize(), ident(f.Name), want[i].name))
	}
	if len(wrong) == 0 {
		return nil, nil
	}
	return fmt.Errorf("sinks: table %q in %s has columns of a type that cannot hold every value of the job's: %s; "+
		"change them (%s) or drop the table so that mr creates it",
		t.Name, s, strings.Join(wrong, "; "), strings.Join(alter, "; ")), nil
}

// resolveTypes returns the types of fields' columns as the server
// resolves postgresType (a field's SQLType may be spelled any way SQL
// allows: varchar(20), int4): the oid and type modifier of the result
// columns of SELECT NULL::type, …, and their format_type names.
func resolveTypes(ctx context.Context, tx pgx.Tx, fields []mapreduce.Field) ([]pgColumnType, error) {
	exprs := make([]string, len(fields))
	for i, f := range fields {
		exprs[i] = "NULL::" + postgresType(f)
	}
	rows, err := tx.Query(ctx, "SELECT "+strings.Join(exprs, ", "))
	if err != nil {
		return nil, err
	}
	descs := rows.FieldDescriptions()
	types := make([]pgColumnType, len(descs))
	oids, mods := make([]uint32, len(descs)), make([]int32, len(descs))
	for i, d := range descs {
		types[i] = pgColumnType{oid: d.DataTypeOID, mod: d.TypeModifier}
		oids[i], mods[i] = d.DataTypeOID, d.TypeModifier
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = tx.Query(ctx, `SELECT format_type(o, m) FROM unnest($1::oid[], $2::int4[]) WITH ORDINALITY AS t(o, m, i) ORDER BY i`, oids, mods)
	if err != nil {
		return nil, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	for i := range types {
		types[i].name = names[i]
	}
	return types, nil
}
