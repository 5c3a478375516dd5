package mapreducetest

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/cockroachdb/apd/v3"
	"github.com/jackc/pgx/v5"

	"github.com/mrengine/mr/internal/sqlname"
	"github.com/mrengine/mr/mapreduce"
)

// Table is a fixture: a table the harness creates and fills before a run.
type Table struct {
	Name    string
	Columns []Column
	// Rows holds one value per column, as Go values: integers, float64,
	// string, bool, []byte, time.Time, mapreduce.Date, *apd.Decimal (or a
	// string for numeric), and nil for NULL.
	Rows [][]any
}

// Column is one column of a fixture table. Type is its SQL type and any
// constraint, as CREATE TABLE takes them in both SQLite and PostgreSQL:
// "bigint primary key", "text not null", "timestamptz", "numeric". The
// source needs the cursor column (id, unless the job says otherwise) to be
// the primary key or to have a unique index.
type Column struct {
	Name string
	Type string
}

// dialect is what differs between the two databases the harness fills.
type dialect struct{ postgres bool }

// quote quotes a table name; in PostgreSQL, as the sinks and sources read
// it, a dot splits schema from table.
func (d dialect) quote(table string) string {
	if d.postgres {
		if schema, name, ok := strings.Cut(table, "."); ok {
			return pgx.Identifier{schema, name}.Sanitize()
		}
		return pgx.Identifier{table}.Sanitize()
	}
	return sqlname.Quote(table)
}

func (d dialect) placeholder(i int) string {
	if d.postgres {
		return fmt.Sprintf("$%d", i+1)
	}
	return "?"
}

// sqliteTimestamp is how a fixture's timestamps are stored in SQLite: RFC
// 3339 text in UTC with microseconds, the layout the SQLite sink writes, so
// that text order is time order and sources read it back as a time.
const sqliteTimestamp = "2006-01-02T15:04:05.000000Z07:00"

// arg converts a fixture value to what the driver stores in its column.
func (d dialect) arg(v any) any {
	switch v := v.(type) {
	case mapreduce.Date:
		return v.String() // an int32 would be stored as a count of days
	case time.Time:
		if d.postgres {
			return v
		}
		return v.UTC().Format(sqliteTimestamp)
	case *apd.Decimal:
		return v.Text('f')
	case apd.Decimal:
		return v.Text('f')
	}
	return v
}

// createTable creates tab and inserts its rows in one transaction.
func (d dialect) createTable(ctx context.Context, db *sql.DB, tab Table) (err error) {
	if len(tab.Columns) == 0 {
		return fmt.Errorf("fixture %s has no columns", tab.Name)
	}
	cols := make([]string, len(tab.Columns))
	defs := make([]string, len(tab.Columns))
	marks := make([]string, len(tab.Columns))
	for i, c := range tab.Columns {
		cols[i] = sqlname.Quote(c.Name)
		defs[i] = sqlname.Quote(c.Name) + " " + c.Type
		marks[i] = d.placeholder(i)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	name := d.quote(tab.Name)
	if _, err := tx.ExecContext(ctx, "CREATE TABLE "+name+" ("+strings.Join(defs, ", ")+")"); err != nil {
		return fmt.Errorf("create fixture %s: %w", tab.Name, err)
	}
	insert, err := tx.PrepareContext(ctx, "INSERT INTO "+name+" ("+strings.Join(cols, ", ")+") VALUES ("+strings.Join(marks, ", ")+")")
	if err != nil {
		return fmt.Errorf("fixture %s: %w", tab.Name, err)
	}
	defer insert.Close()
	args := make([]any, len(tab.Columns))
	for i, row := range tab.Rows {
		if len(row) != len(tab.Columns) {
			return fmt.Errorf("fixture %s: row %d has %d values for %d columns", tab.Name, i, len(row), len(tab.Columns))
		}
		for j, v := range row {
			args[j] = d.arg(v)
		}
		if _, err := insert.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("fixture %s: row %d %v: %w", tab.Name, i, row, err)
		}
	}
	return tx.Commit()
}

// selectOutput is the query that reads t's rows in row order, each column
// as something normalize turns into its canonical Go value whatever the
// database: PostgreSQL gives dates, numerics and arrays as text (arrays as
// JSON, which is how SQLite stores them).
func (d dialect) selectOutput(t mapreduce.OutputTable) string {
	var cols []string
	for _, f := range append(append([]mapreduce.Field(nil), t.Keys...), t.Values...) {
		c := sqlname.Quote(f.Name)
		switch {
		case !d.postgres:
		case f.Array:
			c = "to_json(" + c + ")::text"
		case f.Type == mapreduce.TypeDate, f.Type == mapreduce.TypeDecimal:
			c += "::text"
		}
		cols = append(cols, c)
	}
	return "SELECT " + strings.Join(cols, ", ") + " FROM " + d.quote(t.Name)
}
