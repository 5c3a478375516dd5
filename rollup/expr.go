package rollup

import "strings"

// nodeKind is the kind of a node of the scalar expression parser's tree.
// The tree is only as detailed as the parser needs: to find where each
// expression ends, the aggregate calls in it, what PostgreSQL would name
// it, and the shapes that become keys and aggregate trees. All else is
// nOther, kept as text.
type nodeKind uint8

const (
	nColumn nodeKind = iota // names: a column reference
	nNumber                 // tok; the sign of a negative literal folded in (neg)
	nString                 // tok
	nFunc                   // names(args), with distinct, star, all
	nOp                     // op with one or two args
	nCast                   // args[0]::typ
	nTyped                  // typ 'tok', as in interval '1 day'
	nParen                  // (args[0])
	nOther                  // anything else; label is the name PostgreSQL gives it
)

// node is an expression: the tokens first..last of the query.
type node struct {
	kind        nodeKind
	first, last int
	names       []string // nColumn, nFunc: the qualified name's parts, folded
	op          string   // nOp
	typ         string   // nCast, nTyped: the type's name as PostgreSQL labels a column
	label       string   // nOther: the column name PostgreSQL gives it, "" for ?column?
	tok         token    // nNumber, nString, nTyped: the literal
	neg         bool     // nNumber: a minus sign before it
	args        []*node
	distinct    bool // nFunc: f(DISTINCT …)
	star        bool // nFunc: f(*)
	named       bool // nFunc: some argument is named (name => value)
	fields      bool // nTyped, nCast: an interval type with fields or a precision (interval '1' day, ::interval(0))
	agg         Func // nFunc: the aggregate it calls, "" for other functions
	opAt        int  // nOp: the operator's first token
}

// Operator precedence, lowest first, as PostgreSQL's grammar has it
// (src/backend/parser/gram.y); unary minus binds tighter than ^, so
// -2^2 is 4, and ^ is left-associative.
const (
	precOr = 1 + iota
	precAnd
	precNot
	precIs      // IS, ISNULL, NOTNULL
	precCmp     // < > = <= >= <>, OVERLAPS
	precLike    // BETWEEN IN LIKE ILIKE SIMILAR
	precOp      // any other operator
	precAdd     // + -
	precMul     // * / %
	precExp     // ^
	precAt      // AT TIME ZONE, AT LOCAL
	precCollate // COLLATE
	precUnary   // unary + and -
)

// builtinTypes are the labels of the SQL-standard type names that
// PostgreSQL maps to its own (int is int4).
var builtinTypes = map[string]string{"int": "int4", "integer": "int4", "smallint": "int2", "bigint": "int8",
	"real": "float4", "float": "float8", "dec": "numeric", "decimal": "numeric", "numeric": "numeric", "boolean": "bool"}

// maxDepth bounds the nesting of expressions, so that a pathological
// query fails with a message rather than growing the stack without end.
const maxDepth = 200

var cmpOps = map[string]bool{"<": true, ">": true, "=": true, "<=": true, ">=": true, "<>": true}

func (p *parser) mk(kind nodeKind, first int, args ...*node) *node {
	return &node{kind: kind, first: first, last: p.i - 1, args: args}
}

// expr parses an expression whose operators bind at least as tightly as
// minPrec.
func (p *parser) expr(minPrec int) *node {
	p.depth++
	if p.depth > maxDepth {
		t := p.peek()
		p.fail(t.pos, t.end, "simplify the expression", "the expression is nested too deeply (over %d levels)", maxDepth)
	}
	defer func() { p.depth-- }()
	left := p.prefix()
	for {
		n := p.infix(left, minPrec)
		if n == nil {
			return left
		}
		left = n
	}
}

// prefix parses NOT, a prefix operator and its operand, or a primary
// expression with its postfix casts, subscripts and fields.
func (p *parser) prefix() *node {
	t := p.peek()
	first := p.i
	switch {
	case t.is("not"):
		p.advance()
		x := p.expr(precNot)
		n := p.mk(nOp, first, x)
		n.op, n.opAt = "not", first
		return n
	case t.kind == tOp && (t.val == "-" || t.val == "+"):
		p.advance()
		x := p.expr(precUnary)
		if x.kind == nNumber {
			x.first = first
			x.neg = x.neg != (t.val == "-")
			return x
		}
		n := p.mk(nOp, first, x)
		n.op, n.opAt = t.val, first
		return n
	case t.kind == tOp && t.val != "*":
		p.advance()
		x := p.expr(precOp + 1)
		n := p.mk(nOp, first, x)
		n.op, n.opAt = t.val, first
		return n
	case t.is("operator") && p.peekAt(1).isPunct("("):
		op := p.operatorName()
		x := p.expr(precOp + 1)
		n := p.mk(nOp, first, x)
		n.op, n.opAt = op, first
		return n
	}
	return p.postfix(p.primary())
}

// operatorName parses OPERATOR(schema.op).
func (p *parser) operatorName() string {
	p.advance()
	p.expectPunct("(")
	var b strings.Builder
	for p.peek().kind == tIdent && p.peekAt(1).isPunct(".") {
		b.WriteString(p.advance().val + ".")
		p.advance()
	}
	t := p.peek()
	if t.kind != tOp {
		p.unexpected(t, "write OPERATOR(schema.op), as in OPERATOR(pg_catalog.+)")
	}
	p.advance()
	b.WriteString(t.val)
	p.expectPunct(")")
	return "operator(" + b.String() + ")"
}

// infix parses the operator at the current token and its right operand
// when it binds at least as tightly as minPrec, and returns nil otherwise.
func (p *parser) infix(left *node, minPrec int) *node {
	t, first := p.peek(), left.first
	prec := 0
	switch {
	case t.is("or"):
		prec = precOr
	case t.is("and"):
		prec = precAnd
	case t.is("is") || t.is("isnull") || t.is("notnull"):
		prec = precIs
	case t.kind == tOp && cmpOps[t.val] || t.is("overlaps"):
		prec = precCmp
	case t.is("between") || t.is("in") || t.is("like") || t.is("ilike") || t.is("similar"):
		prec = precLike
	case t.is("not"):
		if n := p.peekAt(1); n.is("between") || n.is("in") || n.is("like") || n.is("ilike") || n.is("similar") {
			prec = precLike
		}
	case t.kind == tOp && (t.val == "+" || t.val == "-"):
		prec = precAdd
	case t.kind == tOp && (t.val == "*" || t.val == "/" || t.val == "%"):
		prec = precMul
	case t.kind == tOp && t.val == "^":
		prec = precExp
	case t.kind == tOp || t.is("operator") && p.peekAt(1).isPunct("("):
		prec = precOp
	case t.is("at") && (p.peekAt(1).is("time") || p.peekAt(1).is("local")):
		prec = precAt
	case t.is("collate"):
		prec = precCollate
	}
	if prec == 0 || prec < minPrec {
		return nil
	}
	switch prec {
	case precIs:
		return p.isExpr(left)
	case precLike:
		return p.likeExpr(left)
	case precAt:
		p.advance()
		if p.accept("local") {
			n := p.mk(nOther, first, left)
			n.label = "timezone"
			return n
		}
		p.advance() // TIME
		p.expectKw("zone")
		n := p.mk(nOther, first, left, p.expr(precAt+1))
		n.label = "timezone"
		return n
	case precCollate:
		p.advance()
		p.anyName("a collation")
		n := p.mk(nOther, first, left)
		n.label = labelOf(left)
		return n
	}
	op, opAt := t.val, p.i
	if t.is("operator") {
		op = p.operatorName()
	} else {
		p.advance()
	}
	if t.is("overlaps") {
		op = "overlaps"
	}
	var right *node
	if (prec == precCmp || prec == precOp) && (p.peek().is("any") || p.peek().is("some") || p.peek().is("all")) && p.peekAt(1).isPunct("(") {
		right = p.subqueryOr(true)
	} else {
		right = p.expr(prec + 1)
	}
	n := p.mk(nOp, first, left, right)
	n.op, n.opAt = op, opAt
	return n
}

// isExpr parses the IS forms after left: IS [NOT] NULL, TRUE, FALSE,
// UNKNOWN, DOCUMENT, [form] NORMALIZED, JSON …, DISTINCT FROM x, and the
// ISNULL and NOTNULL postfix operators.
func (p *parser) isExpr(left *node) *node {
	first := left.first
	if p.accept("isnull") || p.accept("notnull") {
		return p.mk(nOther, first, left)
	}
	p.advance() // IS
	p.accept("not")
	t := p.peek()
	switch {
	case t.is("null") || t.is("true") || t.is("false") || t.is("unknown") || t.is("document") || t.is("normalized"):
		p.advance()
	case t.is("nfc") || t.is("nfd") || t.is("nfkc") || t.is("nfkd"):
		p.advance()
		p.expectKw("normalized")
	case t.is("distinct"):
		p.advance()
		p.expectKw("from")
		return p.mk(nOther, first, left, p.expr(precIs+1))
	case t.is("json"):
		p.advance()
		_ = p.accept("value") || p.accept("array") || p.accept("object") || p.accept("scalar")
		if p.accept("with") || p.accept("without") {
			p.expectKw("unique")
			p.accept("keys")
		}
	default:
		p.unexpected(t, "IS is followed by NULL, TRUE, FALSE, UNKNOWN or DISTINCT FROM")
	}
	return p.mk(nOther, first, left)
}

// likeExpr parses [NOT] BETWEEN, IN, LIKE, ILIKE and SIMILAR TO after left.
func (p *parser) likeExpr(left *node) *node {
	first := left.first
	p.accept("not")
	t := p.advance()
	args := []*node{left}
	switch {
	case t.is("between"):
		if !p.accept("symmetric") {
			p.accept("asymmetric")
		}
		args = append(args, p.expr(precLike+1))
		p.expectKw("and")
		args = append(args, p.expr(precLike+1))
	case t.is("in"):
		args = append(args, p.subqueryOr(false))
	default:
		if t.is("similar") {
			p.expectKw("to")
		}
		if (p.peek().is("any") || p.peek().is("some") || p.peek().is("all")) && p.peekAt(1).isPunct("(") {
			args = append(args, p.subqueryOr(true))
		} else {
			args = append(args, p.expr(precLike+1))
		}
		if p.accept("escape") {
			args = append(args, p.expr(precLike+1))
		}
	}
	return p.mk(nOther, first, args...)
}

// subqueryOr parses [ANY|SOME|ALL] (list), failing on a subquery.
func (p *parser) subqueryOr(quantified bool) *node {
	first := p.i
	if quantified {
		p.advance()
	}
	p.expectPunct("(")
	p.noSubquery()
	args := p.exprList()
	p.expectPunct(")")
	return p.mk(nOther, first, args...)
}

// exprList parses expr [, expr]…
func (p *parser) exprList() []*node {
	args := []*node{p.expr(0)}
	for p.acceptPunct(",") {
		args = append(args, p.expr(0))
	}
	return args
}

// noSubquery fails if a subquery starts at the current token.
func (p *parser) noSubquery() {
	if t := p.peek(); t.is("select") || t.is("with") || t.is("values") || t.is("table") {
		p.fail(t.pos, t.end, "mr rollup reads one table, row by row: "+grammar, "subqueries are not supported")
	}
}

// postfix parses the casts (::type), subscripts ([i], [i:j]) and fields
// (.name) after a primary expression.
func (p *parser) postfix(n *node) *node {
	for {
		t := p.peek()
		switch {
		case t.isPunct("::"):
			p.advance()
			typ := p.typeName()
			c := p.mk(nCast, n.first, n)
			c.typ, c.fields = typ, p.typeQualified
			n = c
		case t.isPunct("["):
			p.advance()
			args := []*node{n}
			if !p.peek().isPunct(":") {
				args = append(args, p.expr(0))
			}
			if p.acceptPunct(":") && !p.peek().isPunct("]") {
				args = append(args, p.expr(0))
			}
			p.expectPunct("]")
			s := p.mk(nOther, n.first, args...)
			s.label = labelOf(n)
			n = s
		case t.isPunct(".") && (n.kind == nParen || p.toks[n.last].isPunct("]")):
			p.advance()
			f := p.peek()
			if f.kind != tIdent {
				p.unexpected(f, "name the field: (x).field")
			}
			p.advance()
			s := p.mk(nOther, n.first, n)
			s.label = f.val
			n = s
		default:
			return n
		}
	}
}

// primary parses a literal, a column reference, a function call, a
// parenthesized expression and the other forms of PostgreSQL's c_expr.
func (p *parser) primary() *node {
	t := p.peek()
	first := p.i
	switch t.kind {
	case tNumber:
		p.advance()
		return &node{kind: nNumber, first: first, last: first, tok: t}
	case tString:
		p.advance()
		return &node{kind: nString, first: first, last: first, tok: t}
	case tParam:
		p.fail(t.pos, t.end, "write the value itself in the query", "parameters such as %s are not supported", t.val)
	case tPunct:
		if t.isPunct("(") {
			p.advance()
			p.noSubquery()
			args := p.exprList()
			p.expectPunct(")")
			if len(args) > 1 {
				n := p.mk(nOther, first, args...)
				n.label = "row"
				return n
			}
			return p.mk(nParen, first, args[0])
		}
	case tIdent:
		return p.identExpr()
	}
	if t.kind == tOp && t.val == "*" {
		p.fail(t.pos, t.end, "", "* is only for count(*)")
	}
	p.unexpected(t, "")
	return nil
}

// identExpr parses what starts with an identifier or keyword: constants,
// CASE, CAST, ARRAY, ROW, the functions with grammar of their own, typed
// literals (date '2024-01-01'), function calls and column references.
func (p *parser) identExpr() *node {
	t := p.peek()
	first := p.i
	open := p.peekAt(1).isPunct("(")
	if !t.quoted {
		switch t.val {
		case "true", "false", "null":
			p.advance()
			return p.mk(nOther, first)
		case "case":
			return p.caseExpr()
		case "cast":
			p.advance()
			p.expectPunct("(")
			x := p.expr(0)
			p.expectKw("as")
			typ := p.typeName()
			qualified := p.typeQualified
			p.expectPunct(")")
			n := p.mk(nCast, first, x)
			n.typ, n.fields = typ, qualified
			return n
		case "array":
			p.advance()
			if p.peek().isPunct("(") {
				p.advance()
				p.noSubquery()
				p.unexpected(p.peek(), "write ARRAY[a, b]")
			}
			p.arrayBody()
			n := p.mk(nOther, first)
			n.label = "array"
			return n
		case "exists":
			p.fail(t.pos, t.end, "mr rollup reads one table, row by row: "+grammar, "subqueries (EXISTS) are not supported")
		case "row":
			if open {
				p.advance()
				p.advance()
				var args []*node
				if !p.peek().isPunct(")") {
					args = p.exprList()
				}
				p.expectPunct(")")
				n := p.mk(nOther, first, args...)
				n.label = "row"
				return n
			}
		case "current_date", "current_time", "current_timestamp", "localtime", "localtimestamp":
			p.advance()
			if p.acceptPunct("(") {
				p.expr(0)
				p.expectPunct(")")
			}
			n := p.mk(nOther, first)
			n.label = t.val
			return n
		case "current_role", "current_user", "session_user", "system_user", "user", "current_catalog":
			p.advance()
			n := p.mk(nOther, first)
			n.label = t.val
			return n
		case "current_schema":
			if !open {
				p.advance()
				n := p.mk(nOther, first)
				n.label = t.val
				return n
			}
		case "extract", "substring", "position", "overlay", "trim", "coalesce", "greatest", "least", "nullif", "normalize", "treat":
			if open {
				return p.specialFunc()
			}
		case "collation":
			if p.peekAt(1).is("for") {
				p.advance()
				p.advance()
				p.expectPunct("(")
				x := p.expr(0)
				p.expectPunct(")")
				n := p.mk(nOther, first, x)
				n.label = "pg_collation_for"
				return n
			}
		case "grouping":
			if open {
				p.fail(t.pos, t.end, "mr rollup groups by its keys once: "+grammar, "GROUPING is not supported")
			}
		}
		if constTypeKw[t.val] && (t.val != "double" || p.peekAt(1).is("precision")) {
			if n, ok := p.tryTypedLiteral(); ok {
				return n
			}
		}
		if t.val == "double" && p.peekAt(1).is("precision") {
			p.unexpected(p.peekAt(2), "write double precision 'value', or a cast: 'value'::double precision")
		}
		if reservedKw[t.val] || typeFuncKw[t.val] && !open {
			p.unexpected(t, "")
		}
	}
	// A qualified name: a column, a function, or the type of a literal.
	names := []string{p.advance().val}
	for p.peek().isPunct(".") {
		p.advance()
		f := p.peek()
		switch {
		case f.kind == tIdent:
			names = append(names, p.advance().val)
		case f.kind == tOp && f.val == "*":
			p.fail(p.toks[first].pos, f.end, "name the columns", "%s.* is not supported", strings.Join(names, "."))
		default:
			p.unexpected(f, "write a name after the dot")
		}
	}
	if p.peek().isPunct("(") {
		return p.funcCall(first, names)
	}
	if s := p.peek(); s.kind == tString && s.strKind != 'B' && s.strKind != 'X' && s.strKind != 'N' {
		p.advance()
		n := p.mk(nTyped, first)
		n.typ, n.tok = names[len(names)-1], s
		return n
	}
	n := p.mk(nColumn, first)
	n.names = names
	if p.recordRefs {
		p.refs[names[len(names)-1]] = true
	}
	return n
}

// tryTypedLiteral parses a type name starting with a keyword followed by
// a string (timestamp with time zone '…', interval '1' day), and resets
// to the current token when that is not what follows.
func (p *parser) tryTypedLiteral() (n *node, ok bool) {
	first := p.i
	defer func() {
		if r := recover(); r != nil {
			if _, isBail := r.(bailout); !isBail {
				panic(r)
			}
			p.i, n, ok = first, nil, false
		}
	}()
	typ := p.typeName()
	s := p.peek()
	if s.kind != tString || s.strKind == 'B' || s.strKind == 'X' || s.strKind == 'N' {
		p.i = first
		return nil, false
	}
	qualified := p.typeQualified
	p.advance()
	n = &node{kind: nTyped, first: first, typ: typ, tok: s}
	if typ == "interval" {
		n.fields = p.intervalFields() || qualified
	}
	n.last = p.i - 1
	return n, true
}

// intervalFields parses the optional fields of an interval type: YEAR,
// MONTH … SECOND [(p)], or a range of them (DAY TO SECOND).
func (p *parser) intervalFields() bool {
	isField := func(t token) bool {
		return t.is("year") || t.is("month") || t.is("day") || t.is("hour") || t.is("minute") || t.is("second")
	}
	if !isField(p.peek()) {
		return false
	}
	p.advance()
	if p.accept("to") {
		if !isField(p.peek()) {
			p.unexpected(p.peek(), "write an interval field: YEAR, MONTH, DAY, HOUR, MINUTE or SECOND")
		}
		p.advance()
	}
	if p.toks[p.i-1].is("second") && p.acceptPunct("(") {
		p.expr(0)
		p.expectPunct(")")
	}
	return true
}

// arrayBody parses [a, b] or [[a, b], [c, d]] after ARRAY.
func (p *parser) arrayBody() {
	p.expectPunct("[")
	if p.acceptPunct("]") {
		return
	}
	for {
		if p.peek().isPunct("[") {
			p.arrayBody()
		} else {
			p.expr(0)
		}
		if !p.acceptPunct(",") {
			break
		}
	}
	p.expectPunct("]")
}

// caseExpr parses CASE [x] WHEN c THEN r … [ELSE e] END.
func (p *parser) caseExpr() *node {
	first := p.i
	p.advance()
	const usage = "write CASE WHEN condition THEN value … [ELSE value] END"
	var args []*node
	if t := p.peek(); t.is("else") || t.is("end") {
		p.unexpected(t, usage)
	} else if !t.is("when") {
		args = append(args, p.expr(0))
	}
	if !p.peek().is("when") {
		p.unexpected(p.peek(), usage)
	}
	for p.accept("when") {
		args = append(args, p.expr(0))
		p.expectKw("then")
		args = append(args, p.expr(0))
	}
	if p.accept("else") {
		args = append(args, p.expr(0))
	}
	p.expectKw("end")
	n := p.mk(nOther, first, args...)
	n.label = "case"
	return n
}

// specialFunc parses a function with grammar of its own: EXTRACT(field
// FROM x), SUBSTRING(x FROM a FOR b), POSITION(a IN b), OVERLAY(x PLACING
// y FROM a FOR b), TRIM([BOTH|LEADING|TRAILING] [c] FROM x), TREAT(x AS
// type), and COALESCE, GREATEST, LEAST, NULLIF and NORMALIZE.
func (p *parser) specialFunc() *node {
	first := p.i
	name := p.advance().val
	p.advance() // (
	label := name
	var args []*node
	sep := func(kws ...string) bool {
		for _, kw := range kws {
			if p.accept(kw) {
				return true
			}
		}
		return p.acceptPunct(",")
	}
	switch name {
	case "extract":
		f := p.peek()
		if f.kind != tIdent && f.kind != tString {
			p.unexpected(f, "write EXTRACT(field FROM value), as in EXTRACT(year FROM created_at)")
		}
		p.advance()
		p.expectKw("from")
		args = append(args, p.expr(0))
	case "position":
		args = append(args, p.expr(precLike+1))
		p.expectKw("in")
		args = append(args, p.expr(precLike+1))
	case "trim":
		if p.accept("both") {
			label = "btrim"
		} else if p.accept("leading") {
			label = "ltrim"
		} else if p.accept("trailing") {
			label = "rtrim"
		} else {
			label = "btrim"
		}
		if !p.accept("from") {
			args = append(args, p.expr(0))
			if p.accept("from") || p.acceptPunct(",") {
				args = append(args, p.exprList()...)
			}
		} else {
			args = append(args, p.exprList()...)
		}
	case "treat":
		args = append(args, p.expr(0))
		p.expectKw("as")
		label = p.typeName()
	case "normalize":
		args = append(args, p.expr(0))
		if p.acceptPunct(",") {
			if f := p.peek(); f.is("nfc") || f.is("nfd") || f.is("nfkc") || f.is("nfkd") {
				p.advance()
			} else {
				p.unexpected(f, "the form is NFC, NFD, NFKC or NFKD")
			}
		}
	default: // substring, overlay, coalesce, greatest, least, nullif
		args = append(args, p.expr(0))
		for sep("from", "for", "placing", "similar", "escape") {
			args = append(args, p.expr(0))
		}
	}
	p.expectPunct(")")
	n := p.mk(nOther, first, args...)
	n.label = label
	return n
}

// funcCall parses the arguments of a call of names, which are parsed,
// and what may follow them, failing on what a rollup cannot hold:
// FILTER, OVER, WITHIN GROUP, ORDER BY among the arguments, aggregates
// that mr does not compute, window functions.
func (p *parser) funcCall(first int, names []string) *node {
	n := &node{kind: nFunc, first: first, names: names}
	base := ""
	if len(names) == 1 || len(names) == 2 && names[0] == "pg_catalog" {
		base = names[len(names)-1]
		if _, ok := aggFuncs[Func(base)]; ok {
			n.agg = Func(base)
		}
	}
	nameTok := p.toks[p.i-1]
	p.advance() // (
	switch {
	case p.peek().isPunct(")"):
	case p.peek().kind == tOp && p.peek().val == "*":
		p.advance()
		if !p.peek().isPunct(")") {
			p.unexpected(p.peek(), "expected ): count(*) counts rows")
		}
		n.star = true
	default:
		if p.accept("distinct") {
			n.distinct = true
		} else {
			p.accept("all")
		}
		for {
			if p.accept("variadic") {
				n.named = true
			}
			if a := p.peekAt(1); p.peek().kind == tIdent && (a.isPunct("=>") || a.isPunct(":=")) {
				p.advance()
				p.advance()
				n.named = true
			}
			if t := p.peek(); t.kind == tOp && t.val == "*" {
				p.fail(t.pos, t.end, "write count(*) to count rows", "* is only for count(*)")
			}
			n.args = append(n.args, p.expr(0))
			if !p.acceptPunct(",") {
				break
			}
		}
		if t := p.peek(); t.is("order") {
			p.fail(t.pos, p.peekAt(1).end, "mr rollup's aggregates do not depend on the order of rows", "ORDER BY in an aggregate's arguments is not supported")
		}
	}
	p.expectPunct(")")
	n.last = p.i - 1
	fn := p.src[p.toks[first].pos:nameTok.end]
	switch t := p.peek(); {
	case t.is("within") && p.peekAt(1).is("group"):
		p.fail(t.pos, p.peekAt(1).end, "use approx_quantile(x, q) or median(x)", "WITHIN GROUP is not supported")
	case t.is("filter"):
		p.fail(t.pos, t.end, "aggregate a CASE instead: sum(CASE WHEN condition THEN x END), count(CASE WHEN condition THEN 1 END)", "FILTER is not supported")
	case t.is("over"):
		p.fail(t.pos, t.end, "mr rollup computes one row per group: "+grammar, "window functions (OVER) are not supported")
	}
	if hint, ok := otherAggs[base]; ok {
		if hint == "" {
			hint = "mr rollup computes " + aggList
		}
		p.fail(p.toks[first].pos, nameTok.end, hint, "%s is not an aggregate mr rollup computes", fn)
	}
	if windowFuncs[base] {
		p.fail(p.toks[first].pos, nameTok.end, "mr rollup computes one row per group: "+grammar, "%s is a window function, which is not supported", fn)
	}
	if n.agg != "" {
		for _, a := range n.args {
			if inner := findAgg(a); inner != nil {
				p.failNode(inner, "an aggregate's argument is computed from each row: combine aggregates outside it, as in max(x) - min(x)",
					"aggregate calls cannot be nested")
			}
		}
	}
	return n
}

// findAgg returns the first aggregate call in n, or nil.
func findAgg(n *node) *node {
	if n.kind == nFunc && n.agg != "" {
		return n
	}
	for _, a := range n.args {
		if f := findAgg(a); f != nil {
			return f
		}
	}
	return nil
}

// anyName parses a possibly qualified name (of a collation or type).
func (p *parser) anyName(what string) []string {
	t := p.peek()
	if t.kind != tIdent {
		p.unexpected(t, "write "+what+"'s name")
	}
	names := []string{p.advance().val}
	for p.peek().isPunct(".") && p.peekAt(1).kind == tIdent {
		p.advance()
		names = append(names, p.advance().val)
	}
	return names
}

// typeName parses a type, as after :: or CAST(x AS …), and returns the
// name PostgreSQL gives a column cast to it without a name of its own.
func (p *parser) typeName() string {
	t := p.peek()
	if t.kind != tIdent || !t.quoted && reservedKw[t.val] {
		p.unexpected(t, "write a type name, as in ::numeric(12,2) or ::timestamp with time zone")
	}
	label := ""
	p.typeQualified = false
	switch {
	case t.quoted:
	case t.val == "double":
		p.advance()
		p.expectKw("precision")
		label = "float8"
	case t.val == "character" || t.val == "char" || t.val == "nchar" || t.val == "national":
		p.advance()
		if t.val == "national" && !p.accept("character") {
			p.expectKw("char")
		}
		label = "bpchar"
		if p.accept("varying") {
			label = "varchar"
		}
	case t.val == "bit":
		p.advance()
		label = "bit"
		if p.accept("varying") {
			label = "varbit"
		}
	case t.val == "timestamp" || t.val == "time":
		p.advance()
		if p.acceptPunct("(") {
			p.expr(0)
			p.expectPunct(")")
		}
		label = t.val
		if p.accept("with") {
			p.expectKw("time")
			p.expectKw("zone")
			label += "tz"
		} else if p.accept("without") {
			p.expectKw("time")
			p.expectKw("zone")
		}
	case t.val == "interval":
		p.advance()
		label = "interval"
		if p.peek().isPunct("(") {
			p.advance()
			p.expr(0)
			p.expectPunct(")")
			p.typeQualified = true
		} else {
			p.typeQualified = p.intervalFields()
		}
	case builtinTypes[t.val] != "":
		p.advance()
		label = builtinTypes[t.val]
	}
	if label == "" {
		names := p.anyName("a type")
		label = names[len(names)-1]
	}
	if p.acceptPunct("(") { // typmods: numeric(12,2), varchar(10)
		if !p.peek().isPunct(")") {
			p.exprList()
		}
		p.expectPunct(")")
	}
	if p.accept("array") {
		if p.acceptPunct("[") {
			p.expr(0)
			p.expectPunct("]")
		}
	}
	for p.acceptPunct("[") {
		if !p.peek().isPunct("]") {
			p.expr(0)
		}
		p.expectPunct("]")
	}
	return label
}
