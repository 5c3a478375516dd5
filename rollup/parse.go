package rollup

import (
	"strings"
	"unicode/utf8"
)

// grammar is the statement mr rollup reads, for messages.
const grammar = "SELECT keys, aggregates FROM table [WHERE condition] [GROUP BY keys]"

// oneTable is the hint for what reads more than one table.
const oneTable = "mr rollup reads one table: " + grammar

// Parse parses one rollup statement (see the package documentation). Its
// error is a *SyntaxError.
func Parse(sql string) (q *Query, err error) {
	for i := 0; i < len(sql); {
		r, size := utf8.DecodeRuneInString(sql[i:])
		if r == utf8.RuneError && size == 1 {
			return nil, newError(sql, i, i+1, "save the query as UTF-8", "the query is not UTF-8 text (byte 0x%02x)", sql[i])
		}
		if r == 0 {
			return nil, newError(sql, i, i+1, "remove it", "the query holds a NUL character")
		}
		i += size
	}
	toks, lerr := lex(sql)
	if lerr != nil {
		return nil, lerr
	}
	p := &parser{src: sql, toks: toks, refs: map[string]bool{}, recordRefs: true}
	defer func() {
		if r := recover(); r != nil {
			b, ok := r.(bailout)
			if !ok {
				panic(r)
			}
			q, err = nil, b.err
		}
	}()
	return p.statement(), nil
}

// parser is a recursive-descent parser over the query's tokens. Its
// methods report an error by panicking with a bailout, which Parse
// recovers: the only panic it recovers.
type parser struct {
	src   string
	toks  []token
	i     int // the current token
	depth int // of nested expressions

	// refs holds the names of the columns that the select list and
	// WHERE reference, which a GROUP BY alias must not shadow.
	refs       map[string]bool
	recordRefs bool

	// typeQualified tells whether the last typeName was an interval
	// with fields or a precision, which change how it reads a string.
	typeQualified bool
}

type bailout struct{ err *SyntaxError }

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) peekAt(k int) token { return p.toks[min(p.i+k, len(p.toks)-1)] }

func (p *parser) advance() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

// accept consumes the current token if it is the keyword kw.
func (p *parser) accept(kw string) bool {
	if p.peek().is(kw) {
		p.i++
		return true
	}
	return false
}

func (p *parser) acceptPunct(s string) bool {
	if p.peek().isPunct(s) {
		p.i++
		return true
	}
	return false
}

func (p *parser) expectKw(kw string) {
	if !p.accept(kw) {
		p.unexpected(p.peek(), "expected "+strings.ToUpper(kw))
	}
}

func (p *parser) expectPunct(s string) {
	if !p.acceptPunct(s) {
		p.unexpected(p.peek(), "expected "+s)
	}
}

func (p *parser) fail(pos, end int, hint, format string, args ...any) {
	panic(bailout{newError(p.src, pos, end, hint, format, args...)})
}

// failNode fails about the text of n.
func (p *parser) failNode(n *node, hint, format string, args ...any) {
	p.fail(p.toks[n.first].pos, p.toks[n.last].end, hint, format, args...)
}

// failTok fails about the tokens from..to.
func (p *parser) failToks(from, to int, hint, format string, args ...any) {
	p.fail(p.toks[from].pos, p.toks[to].end, hint, format, args...)
}

// unexpected fails on token t, which nothing in the grammar allows
// where it is.
func (p *parser) unexpected(t token, hint string) {
	if hint == "" {
		hint = "mr rollup reads " + grammar
	}
	if t.kind == tEOF {
		p.fail(t.pos, t.end, hint, "unexpected end of query")
	}
	text := p.src[t.pos:t.end]
	if utf8.RuneCountInString(text) > 30 {
		text = string([]rune(text)[:30]) + "…"
	}
	if t.kind == tIdent && !t.quoted && (reservedKw[t.val] || typeFuncKw[t.val]) {
		text = strings.ToUpper(text)
	}
	p.fail(t.pos, t.end, hint, "unexpected %s", text)
}

// span is the text of n.
func (p *parser) span(n *node) SQL {
	pos, end := p.toks[n.first].pos, p.toks[n.last].end
	return SQL{Text: p.src[pos:end], Pos: pos, End: end}
}

// rawItem is a select item as parsed, before it is a key or an aggregate.
type rawItem struct {
	n     *node
	alias int // the alias's token, -1 without one
}

// statement parses the whole query.
func (p *parser) statement() *Query {
	p.start()
	if t := p.peek(); t.is("distinct") {
		p.fail(t.pos, t.end, "drop DISTINCT: GROUP BY already makes each row of a rollup distinct", "SELECT DISTINCT is not supported")
	}
	p.accept("all")
	var items []rawItem
	for {
		items = append(items, p.item())
		if !p.acceptPunct(",") {
			break
		}
	}
	if t := p.peek(); !t.is("from") {
		p.unsupportedClause()
		switch {
		case t.kind == tEOF:
			p.fail(t.pos, t.end, oneTable, "the query has no FROM")
		case t.is("where"):
			p.fail(t.pos, t.end, oneTable, "FROM must come before WHERE")
		case t.is("group") && p.peekAt(1).is("by"):
			p.fail(t.pos, p.peekAt(1).end, oneTable, "FROM must come before GROUP BY")
		}
		p.unexpected(t, "separate items with commas, and name each with AS: "+grammar)
	}
	p.advance()
	from := p.table()
	p.end("FROM")
	var where *node
	if p.accept("where") {
		where = p.expr(0)
		if a := findAgg(where); a != nil {
			p.failNode(a, "WHERE filters rows before they are aggregated, and mr rollup does not filter groups (HAVING)", "aggregates are not allowed in WHERE")
		}
		p.end("WHERE")
	}
	p.recordRefs = false
	var group []*node
	hasGroup := false
	if t := p.peek(); t.is("group") {
		hasGroup = true
		p.advance()
		p.expectKw("by")
		group = p.groupBy()
		p.end("GROUP BY")
	}
	return p.build(items, from, where, group, hasGroup)
}

// start checks that the statement is a SELECT and consumes the keyword.
func (p *parser) start() {
	t := p.peek()
	switch {
	case t.is("select"):
		p.advance()
		return
	case t.kind == tEOF:
		p.fail(t.pos, t.end, "write "+grammar, "the query is empty")
	case t.is("with"):
		p.fail(t.pos, t.end, oneTable, "WITH (a common table expression) is not supported")
	case t.isPunct("("):
		p.fail(t.pos, t.end, "drop the parentheses around the SELECT", "a SELECT in parentheses is not supported")
	case t.kind == tIdent && !t.quoted:
		p.fail(t.pos, t.end, "mr rollup runs one SELECT: "+grammar, "%s is not a SELECT", strings.ToUpper(t.val))
	}
	p.unexpected(t, "mr rollup runs one SELECT: "+grammar)
}

// item parses a select item and its alias.
func (p *parser) item() rawItem {
	if t := p.peek(); t.kind == tOp && t.val == "*" {
		p.fail(t.pos, t.end, "list the keys and aggregates: SELECT k, count(*) AS n FROM t GROUP BY k", "SELECT * is not supported")
	}
	it := rawItem{n: p.expr(0), alias: -1}
	t := p.peek()
	switch {
	case t.is("as"):
		p.advance()
		a := p.peek()
		if a.kind != tIdent {
			hint := `write a name after AS`
			if a.kind == tString {
				hint = `a name is in double quotes: AS "My name"`
			}
			p.unexpected(a, hint)
		}
		it.alias = p.i
		p.advance()
	case t.kind == tIdent && (t.quoted || !reservedKw[t.val] && !typeFuncKw[t.val] && !asLabelKw[t.val]):
		it.alias = p.i
		p.advance()
	}
	return it
}

// table parses the FROM clause's one table: [schema.]name [[AS] alias].
func (p *parser) table() Table {
	t := p.peek()
	switch {
	case t.isPunct("("):
		p.fail(t.pos, t.end, oneTable, "a subquery in FROM is not supported")
	case t.is("lateral") || t.is("only"):
		p.fail(t.pos, t.end, oneTable, "FROM %s is not supported", strings.ToUpper(t.val))
	case t.kind == tEOF:
		p.fail(t.pos, t.end, oneTable, "FROM needs a table")
	case t.kind != tIdent || !t.quoted && (reservedKw[t.val] || typeFuncKw[t.val]):
		p.unexpected(t, "name the table: FROM orders, or FROM schema.orders")
	}
	first := p.i
	names := []string{p.advance().val}
	for p.peek().isPunct(".") {
		p.advance()
		if p.peek().kind != tIdent {
			p.unexpected(p.peek(), "name the table: FROM orders, or FROM schema.orders")
		}
		names = append(names, p.advance().val)
	}
	last := p.i - 1
	if len(names) > 2 {
		p.failToks(first, last, "name the table as table or schema.table, in the database of --source", "a table name has at most two parts")
	}
	if t := p.peek(); t.isPunct("(") {
		p.failToks(first, p.i, oneTable, "a function in FROM is not supported")
	}
	tab := Table{Name: names[len(names)-1]}
	if len(names) == 2 {
		tab.Schema = names[0]
	}
	pos, end := p.toks[first].pos, p.toks[last].end
	tab.SQL = SQL{Text: p.src[pos:end], Pos: pos, End: end}
	if p.accept("as") {
		a := p.peek()
		if a.kind != tIdent || !a.quoted && (reservedKw[a.val] || typeFuncKw[a.val]) {
			p.unexpected(a, "write the table's alias after AS")
		}
		tab.Alias = p.advance().val
	} else if a := p.peek(); a.kind == tIdent && (a.quoted || !reservedKw[a.val] && !typeFuncKw[a.val]) {
		tab.Alias = p.advance().val
	}
	if t := p.peek(); t.isPunct("(") && tab.Alias != "" {
		p.fail(t.pos, t.end, "name the columns in the select list instead", "column aliases in FROM are not supported")
	}
	return tab
}

// groupBy parses GROUP BY's entries.
func (p *parser) groupBy() []*node {
	if t := p.peek(); t.is("distinct") || t.is("all") {
		p.fail(t.pos, t.end, "group by the keys alone: GROUP BY 1, 2", "GROUP BY %s is not supported", strings.ToUpper(t.val))
	}
	var group []*node
	for {
		t := p.peek()
		switch {
		case (t.is("rollup") || t.is("cube")) && p.peekAt(1).isPunct("("):
			p.fail(t.pos, t.end, "mr rollup groups by one set of keys: run one rollup for each grouping", "GROUP BY %s is not supported", strings.ToUpper(t.val))
		case t.is("grouping") && p.peekAt(1).is("sets"):
			p.fail(t.pos, p.peekAt(1).end, "mr rollup groups by one set of keys: run one rollup for each grouping", "GROUPING SETS is not supported")
		case t.isPunct("(") && p.peekAt(1).isPunct(")"):
			p.fail(t.pos, p.peekAt(1).end, "for one row over the whole table, leave out GROUP BY", "GROUP BY () is not supported")
		}
		n := p.expr(0)
		if a := findAgg(n); a != nil {
			p.failNode(a, "group by the keys: GROUP BY 1, 2", "aggregates are not allowed in GROUP BY")
		}
		group = append(group, n)
		if !p.acceptPunct(",") {
			return group
		}
	}
}

// end checks that the clause after (FROM, WHERE or GROUP BY) was parsed
// to its end: what follows is a clause that may come after it, a
// semicolon or the end, and fails naming the unsupported clause
// otherwise.
func (p *parser) end(after string) {
	t := p.peek()
	switch {
	case t.kind == tEOF:
		return
	case t.isPunct(";"):
		if n := p.peekAt(1); n.kind != tEOF {
			p.fail(n.pos, n.end, "run one rollup at a time", "the query holds more than one statement")
		}
		p.advance()
		return
	case after == "FROM" && t.is("where"), after != "GROUP BY" && t.is("group"):
		return
	}
	p.unsupportedClause()
	switch {
	case t.is("where"):
		p.fail(t.pos, t.end, "mr rollup reads "+grammar, "WHERE must come before GROUP BY")
	case after == "FROM" && t.isPunct(","):
		p.fail(t.pos, t.end, oneTable, "reading several tables is not supported")
	}
	p.unexpected(t, "")
}

// unsupportedClause fails when the current token starts a clause that a
// rollup cannot have, naming it, and returns otherwise.
func (p *parser) unsupportedClause() {
	t, next := p.peek(), p.peekAt(1)
	two := func() string { return strings.ToUpper(t.val + " " + next.val) }
	switch {
	case t.is("having"):
		p.fail(t.pos, t.end, "mr rollup writes every group: filter the output table when you read it", "HAVING is not supported")
	case t.is("order") && next.is("by"):
		p.fail(t.pos, next.end, "the output is a table keyed by the GROUP BY keys: sort it when you read it", "ORDER BY is not supported")
	case t.is("limit") || t.is("offset") || t.is("fetch"):
		p.fail(t.pos, t.end, "mr rollup writes every group: limit when you read the output table", "%s is not supported", strings.ToUpper(t.val))
	case t.is("window"):
		p.fail(t.pos, t.end, "mr rollup computes one row per group: "+grammar, "WINDOW is not supported")
	case t.is("union") || t.is("intersect") || t.is("except"):
		p.fail(t.pos, t.end, "run one rollup for each SELECT", "%s is not supported", strings.ToUpper(t.val))
	case t.is("for"):
		p.fail(t.pos, next.end, "mr rollup reads in read-only transactions: drop it", "%s (row locking) is not supported", two())
	case t.is("into"):
		p.fail(t.pos, t.end, "name the output table with --into", "SELECT INTO is not supported")
	case t.is("join") || (t.is("inner") || t.is("left") || t.is("right") || t.is("full") || t.is("cross") || t.is("natural")):
		p.fail(t.pos, t.end, oneTable, "JOIN is not supported")
	case t.is("tablesample"):
		p.fail(t.pos, t.end, oneTable, "TABLESAMPLE is not supported")
	}
}
