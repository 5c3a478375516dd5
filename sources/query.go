package sources

import (
	"strings"

	"github.com/mrengine/mr/mapreduce"
)

// The pieces of SQL that every range query of both backends shares; each
// backend quotes names its own way and writes the range and its order.

// selectList is what a range query selects after its cursor columns: in's
// columns, quoted by quote, then its expressions, each parenthesized as
// the user wrote it.
func selectList(quote func(string) string, in mapreduce.Input) string {
	var q strings.Builder
	for _, col := range in.Columns {
		q.WriteString(", " + quote(col))
	}
	for _, e := range in.Exprs {
		q.WriteString(", (" + e + ")")
	}
	return q.String()
}

// fromClause is " FROM table", the table quoted already, and as in.Alias
// when the query names one.
func fromClause(quote func(string) string, table string, in mapreduce.Input) string {
	if in.Alias != "" {
		return " FROM " + table + " AS " + quote(in.Alias)
	}
	return " FROM " + table
}

// andWhere is in's condition as one more term of a WHERE clause,
// parenthesized; "" for none.
func andWhere(in mapreduce.Input) string {
	if in.Where == "" {
		return ""
	}
	return " AND (" + in.Where + ")"
}
