package rollup_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mrengine/mr/rollup"
)

// dump describes q without positions, one line per part, so that tests
// compare what Parse understood.
func dump(q *rollup.Query) string {
	var b strings.Builder
	for i, it := range q.Items {
		fmt.Fprintf(&b, "%d %s: %s\n", i+1, it.Name, dumpExpr(it.Expr))
	}
	fmt.Fprintf(&b, "from: %s", dumpTable(q.From))
	if q.Where != nil {
		fmt.Fprintf(&b, "\nwhere: %s", q.Where.Text)
	}
	if q.GroupBy != nil {
		b.WriteString("\ngroup by:")
		for _, k := range q.GroupBy {
			fmt.Fprintf(&b, " %d", k+1)
		}
	}
	return b.String()
}

func dumpTable(t rollup.Table) string {
	s := fmt.Sprintf("%q", t.Name)
	if t.Schema != "" {
		s = fmt.Sprintf("%q.%s", t.Schema, s)
	}
	if t.Alias != "" {
		s += fmt.Sprintf(" AS %q", t.Alias)
	}
	return s
}

func dumpArg(a rollup.Arg) string {
	if a.Column != "" {
		return fmt.Sprintf("column %q", a.Column)
	}
	return fmt.Sprintf("sql %q", a.SQL.Text)
}

func dumpExpr(e rollup.Expr) string {
	switch e := e.(type) {
	case *rollup.Column:
		return fmt.Sprintf("column %q", e.Name)
	case *rollup.DateTrunc:
		s := fmt.Sprintf("date_trunc(%s, %s", e.Unit, dumpArg(e.Arg))
		if e.Zone != "" {
			s += fmt.Sprintf(", zone %q", e.Zone)
		}
		return s + ")"
	case *rollup.TimeBucket:
		iv := e.Interval
		return fmt.Sprintf("time_bucket(%dmon %dd %dus, %s)", iv.Months, iv.Days, iv.Micros, dumpArg(e.Arg))
	case *rollup.SQL:
		return fmt.Sprintf("sql %q", e.Text)
	case *rollup.Call:
		var args []string
		if e.Star {
			args = append(args, "*")
		}
		for _, a := range e.Args {
			args = append(args, dumpArg(a))
		}
		for _, n := range e.Params {
			kind := "num"
			if n.Int {
				kind = "int"
			}
			args = append(args, fmt.Sprintf("%s %s", kind, n.Value))
		}
		d := ""
		if e.Distinct {
			d = "DISTINCT "
		}
		return fmt.Sprintf("%s(%s%s)", e.Func, d, strings.Join(args, ", "))
	case *rollup.Binary:
		return fmt.Sprintf("(%s %c %s)", dumpExpr(e.L), e.Op, dumpExpr(e.R))
	case *rollup.Unary:
		return fmt.Sprintf("(%c%s)", e.Op, dumpExpr(e.X))
	case *rollup.Number:
		if e.Int {
			return "int " + e.Value
		}
		return "num " + e.Value
	}
	return fmt.Sprintf("?%T", e)
}

// spans returns every piece of SQL in q.
func spans(q *rollup.Query) []rollup.SQL {
	s := []rollup.SQL{q.From.SQL}
	if q.Where != nil {
		s = append(s, *q.Where)
	}
	var expr func(rollup.Expr)
	expr = func(e rollup.Expr) {
		s = append(s, e.Span())
		switch e := e.(type) {
		case *rollup.DateTrunc:
			s = append(s, e.Arg.SQL)
		case *rollup.TimeBucket:
			s = append(s, e.Arg.SQL, e.Interval.SQL)
		case *rollup.Call:
			for _, a := range e.Args {
				s = append(s, a.SQL)
			}
			for _, n := range e.Params {
				s = append(s, n.SQL)
			}
		case *rollup.Binary:
			expr(e.L)
			expr(e.R)
		case *rollup.Unary:
			expr(e.X)
		}
	}
	for _, it := range q.Items {
		s = append(s, it.SQL)
		expr(it.Expr)
	}
	return s
}

// checkQuery checks what holds for every Query: its pieces are slices
// of its text, inside the item that holds them; names are unique; GROUP
// BY holds each key once and nothing else; and String parses back to the
// same Query.
func checkQuery(t testing.TB, q *rollup.Query) {
	t.Helper()
	for _, s := range spans(q) {
		if s.Pos < 0 || s.Pos > s.End || s.End > len(q.Text) || q.Text[s.Pos:s.End] != s.Text {
			t.Fatalf("span %+v is not the slice of the query at its position", s)
		}
		if s.Text == "" || s.Text != strings.Trim(s.Text, " \t\n\r\f\v") {
			t.Fatalf("span %q is empty or has white space around it", s.Text)
		}
	}
	names := map[string]bool{}
	for _, it := range q.Items {
		if it.Name == "" || names[it.Name] {
			t.Fatalf("item name %q is empty or taken", it.Name)
		}
		names[it.Name] = true
		e := it.Expr.Span()
		if e.Pos < it.SQL.Pos || e.End > it.SQL.End {
			t.Fatalf("expression %q lies outside its item %q", e.Text, it.SQL.Text)
		}
	}
	grouped := map[int]bool{}
	for _, k := range q.GroupBy {
		if k < 0 || k >= len(q.Items) || !q.Items[k].IsKey() || grouped[k] {
			t.Fatalf("GROUP BY holds %d, which is not a key or is there twice", k)
		}
		grouped[k] = true
	}
	if keys := q.Keys(); len(keys) != len(q.GroupBy) {
		t.Fatalf("keys %v, GROUP BY %v", keys, q.GroupBy)
	}
	again, err := rollup.Parse(q.String())
	if err != nil {
		t.Fatalf("Parse(String()) of\n%s\n= %v\nString() = %s", q.Text, err, q.String())
	}
	if a, b := dump(q), dump(again); a != b {
		t.Fatalf("Parse(String()) differs:\n%s\n--- from\n%s", b, a)
	}
}
