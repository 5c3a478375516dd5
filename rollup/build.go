package rollup

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxNameLen is PostgreSQL's longest name (NAMEDATALEN-1 bytes): it cuts
// longer ones, so two long output names could become one.
const maxNameLen = 63

// build turns the parsed statement into a Query: each item a key or an
// aggregate tree with its name, and GROUP BY resolved to items.
func (p *parser) build(items []rawItem, from Table, where *node, group []*node, hasGroup bool) *Query {
	q := &Query{Text: p.src, From: from}
	if where != nil {
		s := p.span(where)
		q.Where = &s
	}
	names := map[string]int{}
	for i, ri := range items {
		it := Item{SQL: p.span(ri.n)}
		if findAgg(ri.n) != nil {
			it.Expr = p.agg(ri.n, from)
		} else {
			it.Expr = p.key(ri.n, from)
		}
		at := ri.n.first
		if ri.alias >= 0 {
			at = ri.alias
			it.Name = p.toks[ri.alias].val
		} else if it.Name = labelOf(ri.n); it.Name == "" {
			p.failNode(ri.n, "add AS name after it: PostgreSQL would call it ?column?, and every output column needs a name",
				"item %d (%s) needs a name", i+1, abbrev(it.SQL.Text))
		}
		if len(it.Name) > maxNameLen {
			p.failToks(at, max(at, ri.alias), "PostgreSQL cuts names at 63 bytes: give the item a shorter name with AS",
				"the output column name %s is longer than %d bytes", abbrev(it.Name), maxNameLen)
		}
		if j, dup := names[it.Name]; dup {
			p.failToks(at, max(at, ri.alias), "give each item its own name with AS",
				"items %d and %d are both named %s", j+1, i+1, QuoteIdent(it.Name))
		}
		names[it.Name] = i
		q.Items = append(q.Items, it)
	}
	q.GroupBy = p.resolveGroupBy(q, items, group)
	grouped := map[int]bool{}
	for _, k := range q.GroupBy {
		grouped[k] = true
	}
	var keys []string
	for _, k := range q.Keys() {
		keys = append(keys, strconv.Itoa(k+1))
	}
	for _, k := range q.Keys() {
		if grouped[k] {
			continue
		}
		hint := "group by every key item: GROUP BY " + strings.Join(keys, ", ")
		if !hasGroup {
			p.failNode(items[k].n, hint+" (without GROUP BY every item must be an aggregate)",
				"%s is a key, and the query has no GROUP BY", abbrev(q.Items[k].SQL.Text))
		}
		p.failNode(items[k].n, hint, "%s is a key but not in GROUP BY", abbrev(q.Items[k].SQL.Text))
	}
	return q
}

// abbrev shortens s for a message.
func abbrev(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > 40 {
		s = string([]rune(s)[:39]) + "…"
	}
	return s
}

// unparen strips the parentheses around n.
func unparen(n *node) *node {
	for n.kind == nParen {
		n = n.args[0]
	}
	return n
}

// labelOf returns the name PostgreSQL gives a select item n without an
// alias (FigureColname in src/backend/parser/parse_target.c), or "" for
// ?column?.
func labelOf(n *node) string {
	switch n.kind {
	case nColumn, nFunc:
		return n.names[len(n.names)-1]
	case nCast:
		if l := labelOf(n.args[0]); l != "" {
			return l
		}
		return n.typ
	case nTyped:
		return n.typ
	case nParen:
		return labelOf(n.args[0])
	case nOther:
		return n.label
	}
	return ""
}

// isFunc reports whether n calls the function name (or pg_catalog.name
// when catalog).
func isFunc(n *node, name string, catalog bool) bool {
	return n.kind == nFunc && (len(n.names) == 1 && n.names[0] == name ||
		catalog && len(n.names) == 2 && n.names[0] == "pg_catalog" && n.names[1] == name)
}

// plainColumn returns the column's name if n is a plain column reference:
// a name, or one qualified by the table's alias, name or schema.name.
func plainColumn(n *node, from Table) (string, bool) {
	n = unparen(n)
	if n.kind != nColumn {
		return "", false
	}
	names := n.names
	switch {
	case len(names) == 1,
		len(names) == 2 && from.Alias != "" && names[0] == from.Alias,
		len(names) == 2 && from.Alias == "" && names[0] == from.Name,
		len(names) == 3 && from.Alias == "" && from.Schema != "" && names[0] == from.Schema && names[1] == from.Name:
		return names[len(names)-1], true
	}
	return "", false
}

func (p *parser) arg(n *node, from Table) Arg {
	name, _ := plainColumn(n, from)
	return Arg{SQL: p.span(n), Column: name}
}

// key returns the Key of an item without aggregates.
func (p *parser) key(n *node, from Table) Key {
	u := unparen(n)
	if name, ok := plainColumn(u, from); ok {
		return &Column{Name: name, SQL: p.span(u)}
	}
	switch {
	case isFunc(u, "date_trunc", true):
		return p.dateTrunc(u, from)
	case isFunc(u, "time_bucket", false):
		return p.timeBucket(u, from)
	}
	s := p.span(n)
	return &s
}

const truncUnitList = "microseconds, milliseconds, second, minute, hour, day, week, month, quarter, year, decade, century and millennium"

// stringLit returns the value of n if it is a string literal ('…', E'…',
// $$…$$, U&'…').
func stringLit(n *node) (string, bool) {
	n = unparen(n)
	if n.kind != nString || n.tok.strKind == 'B' || n.tok.strKind == 'X' || n.tok.strKind == 'N' {
		return "", false
	}
	return n.tok.val, true
}

// dateTrunc returns the key date_trunc('unit', x [, 'zone']).
func (p *parser) dateTrunc(n *node, from Table) *DateTrunc {
	const usage = "write date_trunc('unit', timestamp) or date_trunc('unit', timestamp, 'time zone'), which mr computes"
	if n.distinct || n.star || n.named || len(n.args) < 2 || len(n.args) > 3 {
		p.failNode(n, usage, "date_trunc takes a unit, a timestamp and optionally a time zone")
	}
	unit, ok := stringLit(n.args[0])
	if !ok {
		p.failNode(n.args[0], usage+"; the units are "+truncUnitList, "date_trunc's unit must be a string literal, such as 'month'")
	}
	d := &DateTrunc{Arg: p.arg(n.args[1], from), SQL: p.span(n)}
	if d.Unit, ok = lookupTruncUnit(unit); !ok {
		p.failNode(n.args[0], "the units are "+truncUnitList, "%s is not a unit of date_trunc", quoteString(unit))
	}
	if len(n.args) == 3 {
		if d.Zone, ok = stringLit(n.args[2]); !ok || d.Zone == "" {
			p.failNode(n.args[2], usage, "date_trunc's time zone must be a string literal, such as 'Europe/Paris'")
		}
	}
	return d
}

// quoteString quotes s as an SQL string literal, shortened for a message.
func quoteString(s string) string {
	return "'" + strings.ReplaceAll(abbrev(s), "'", "''") + "'"
}

// timeBucket returns the key time_bucket(interval, x).
func (p *parser) timeBucket(n *node, from Table) *TimeBucket {
	const usage = "write time_bucket('15 minutes', timestamp), which mr computes; for a time zone use date_trunc('unit', timestamp, 'zone')"
	if n.distinct || n.star || n.named || len(n.args) != 2 {
		p.failNode(n, usage, "time_bucket takes an interval and a timestamp")
	}
	w := unparen(n.args[0])
	text, ok := stringLit(w)
	switch {
	case ok:
	case (w.kind == nTyped || w.kind == nCast) && w.typ == "interval" && w.fields:
		p.failNode(w, "write the unit inside the string: interval '15 minutes'", "interval fields or precision (as in interval '15' minute) are not supported in time_bucket")
	case w.kind == nTyped && w.typ == "interval":
		text, ok = w.tok.val, true
	case w.kind == nCast && w.typ == "interval":
		text, ok = stringLit(w.args[0])
	case w.kind == nNumber:
		p.failNode(w, usage, "time_bucket's width must be an interval such as '15 minutes', not a number")
	}
	if !ok {
		p.failNode(w, usage, "time_bucket's width must be an interval literal, such as '15 minutes' or interval '1 hour'")
	}
	iv, err := parseInterval(text)
	if err == errIntervalSyntax {
		p.failNode(w, "write an interval like '15 minutes', '1 hour', '1 day', '1 month' or 'PT15M'", "%s is not an interval", quoteString(text))
	} else if err != nil {
		p.failNode(w, "use a smaller width: an interval holds up to 178000000 years, or 2147483647 days", "%s: %v", quoteString(text), err)
	}
	switch {
	case iv.Months < 0 || iv.Days < 0 || iv.Micros < 0 || iv == Interval{}:
		p.failNode(w, usage, "time_bucket needs a positive interval, not %s", quoteString(text))
	case iv.Months != 0 && (iv.Days != 0 || iv.Micros != 0):
		p.failNode(w, "use whole months ('1 month', '3 months') or a fixed width ('30 days')", "time_bucket's interval cannot mix months with days or time (%s)", quoteString(text))
	}
	iv.SQL = p.span(n.args[0])
	return &TimeBucket{Interval: iv, Arg: p.arg(n.args[1], from), SQL: p.span(n)}
}

// agg returns the aggregate tree of an item with aggregates: calls
// combined with + - * / ^, unary minus, parentheses and numbers.
func (p *parser) agg(n *node, from Table) Agg {
	const hint = "an aggregate item is aggregate calls combined with + - * / ^ and numbers, as in max(v1) - min(v2); compute the rest when you read the output table"
	switch n.kind {
	case nParen:
		return p.agg(n.args[0], from)
	case nNumber:
		return p.number(n)
	case nColumn:
		name := strings.Join(n.names, ".")
		p.failNode(n, fmt.Sprintf("make %s a key (and group by it), or aggregate it, as in max(%s)", name, name),
			"%s is a column outside an aggregate, in an aggregate item", name)
	}
	if findAgg(n) == nil {
		p.failNode(n, hint, "%s in an aggregate item is not supported", abbrev(p.span(n).Text))
	}
	switch n.kind {
	case nFunc:
		if n.agg != "" {
			return p.call(n, from)
		}
		p.failToks(n.first, n.first+2*(len(n.names)-1), hint, "%s(…) over an aggregate is not supported", strings.Join(n.names, "."))
	case nOp:
		switch {
		case len(n.args) == 2 && len(n.op) == 1 && strings.Contains("+-*/^", n.op):
			return &Binary{Op: n.op[0], L: p.agg(n.args[0], from), R: p.agg(n.args[1], from), SQL: p.span(n)}
		case len(n.args) == 1 && n.op == "-":
			return &Unary{Op: '-', X: p.agg(n.args[0], from), SQL: p.span(n)}
		case len(n.args) == 1 && n.op == "+":
			return p.agg(n.args[0], from)
		}
		p.failToks(n.opAt, n.opAt, hint, "the operator %s over an aggregate is not supported", strings.ToUpper(n.op))
	case nCast:
		p.failNode(n, hint, "a cast over an aggregate is not supported")
	}
	p.failNode(n, hint, "%s over an aggregate is not supported", abbrev(p.span(n).Text))
	return nil
}

func (p *parser) number(n *node) *Number {
	v := n.tok.val
	if n.neg {
		v = "-" + v
	}
	return &Number{Value: v, Int: n.tok.intLit, SQL: p.span(n)}
}

// call returns an aggregate call, checking its arguments.
func (p *parser) call(n *node, from Table) *Call {
	f := n.agg
	spec := aggFuncs[f]
	name := p.src[p.toks[n.first].pos:p.toks[n.first+2*(len(n.names)-1)].end]
	usage := "write " + signature(f)
	nameEnd := n.first + 2*(len(n.names)-1)
	c := &Call{Func: f, Distinct: n.distinct, Star: n.star, SQL: p.span(n)}
	switch {
	case n.named:
		p.failNode(n, usage, "%s takes no named or VARIADIC arguments", name)
	case n.star && f != Count:
		p.failNode(n, usage, "* is only for count(*)")
	case n.star:
		return c
	case n.distinct && f != Count:
		p.failToks(nameEnd+2, nameEnd+2, "mr rollup computes count(DISTINCT x) exactly, and approx_count_distinct(x) estimates it",
			"DISTINCT is only supported in count(DISTINCT x)")
	}
	want := spec.args
	if spec.param != "" {
		want++
	}
	if len(n.args) != want {
		what := "arguments"
		if want == 1 {
			what = "argument"
		}
		p.failNode(n, usage, "%s takes %d %s, not %d", name, want, what, len(n.args))
	}
	for _, a := range n.args[:spec.args] {
		c.Args = append(c.Args, p.arg(a, from))
	}
	if spec.param == "" {
		return c
	}
	pn := n.args[spec.args]
	if pn.kind != nNumber {
		p.failNode(pn, usage, "the %s of %s must be a number literal", spec.param, name)
	}
	num := p.number(pn)
	if spec.param == "q" {
		if q := num.Float64(); !(q >= 0 && q <= 1) {
			p.failNode(pn, usage, "the quantile %s is not between 0 and 1", num.Value)
		}
	} else if v, ok := num.Int64(); !ok || v < 1 {
		p.failNode(pn, usage, "the n of %s must be a whole number from 1, not %s", name, num.Value)
	}
	c.Params = []Number{*num}
	return c
}

// resolveGroupBy returns the items that GROUP BY's entries name: by
// position, by their expression's text, or by their output name.
func (p *parser) resolveGroupBy(q *Query, items []rawItem, group []*node) []int {
	norms := make([]string, len(items))
	for i, ri := range items {
		if q.Items[i].IsKey() {
			norms[i] = p.normalize(ri.n)
		}
	}
	var out []int
	seen := map[int]bool{}
	for _, g := range group {
		k := p.groupItem(q, items, norms, g)
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// groupItem returns the item that the GROUP BY entry g names.
func (p *parser) groupItem(q *Query, items []rawItem, norms []string, g *node) int {
	text := abbrev(p.span(g).Text)
	positions := fmt.Sprintf("positions count the select list's items from 1 to %d", len(items))
	u := unparen(g)
	switch u.kind {
	case nNumber:
		v, ok := p.number(u).Int64()
		if !u.tok.intLit {
			p.failNode(g, positions, "GROUP BY %s: a position is a whole number", text)
		}
		if !ok || v < 1 || v > int64(len(items)) {
			p.failNode(g, positions, "GROUP BY position %s is not in the select list", text)
		}
		k := int(v - 1)
		if !q.Items[k].IsKey() {
			p.failNode(g, "group by the key items only", "GROUP BY %s is %s, an aggregate", text, abbrev(q.Items[k].SQL.Text))
		}
		return k
	case nString, nTyped:
		p.failNode(g, positions, "GROUP BY %s is a constant, not a position", text)
	}
	if name, ok := plainColumn(u, q.From); ok {
		for k, it := range q.Items {
			if c, ok := it.Expr.(*Column); ok && c.Name == name {
				return k
			}
		}
	}
	norm := p.normalize(g)
	for k, n := range norms {
		if n != "" && n == norm {
			return k
		}
	}
	if u.kind == nColumn && len(u.names) == 1 {
		name := u.names[0]
		for k, it := range q.Items {
			if it.Name != name {
				continue
			}
			if !it.IsKey() {
				p.failNode(g, "group by the key items only", "GROUP BY %s names %s, an aggregate", text, abbrev(it.SQL.Text))
			}
			if p.refs[name] {
				p.failNode(g, fmt.Sprintf("group by position (GROUP BY %d), or give item %d another name", k+1, k+1),
					"GROUP BY %s is ambiguous: PostgreSQL reads it as the column %s, not as the name of item %d (%s)", text, name, k+1, abbrev(it.SQL.Text))
			}
			return k
		}
	}
	p.failNode(g, "mr rollup groups by the key items it selects (the output table's primary key): select it as a key, or leave it out of GROUP BY",
		"GROUP BY %s is not a key of the select list", text)
	return 0
}

// normalize spells the tokens of n (without its outer parentheses) for
// comparing expressions: white space, comments and the case of unquoted
// names ignored, "x" the same as x, strings compared by value.
func (p *parser) normalize(n *node) string {
	n = unparen(n)
	var b strings.Builder
	for _, t := range p.toks[n.first : n.last+1] {
		switch t.kind {
		case tIdent:
			if !t.quoted && (reservedKw[t.val] || typeFuncKw[t.val]) {
				b.WriteString("k:")
			} else {
				b.WriteString("i:")
			}
		case tString:
			b.WriteString("s")
			if t.strKind == 'B' || t.strKind == 'X' || t.strKind == 'N' {
				b.WriteByte(t.strKind)
			}
			b.WriteString(":")
		case tNumber:
			b.WriteString("n:")
		default:
			b.WriteString("o:")
		}
		b.WriteString(t.val)
		b.WriteByte(0)
	}
	return b.String()
}
