package rollup

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// tokKind is the kind of a token.
type tokKind uint8

const (
	tEOF    tokKind = iota
	tIdent          // an identifier or keyword; val is folded, or as quoted
	tString         // a string constant; val is its value
	tNumber         // a numeric constant; val is decimalValue's spelling
	tParam          // $1
	tOp             // an operator: + - * / % ^ < > = <= >= <> (also for !=) or any other
	tPunct          // ( ) [ ] , ; . : :: := =>
)

// token is one lexeme of the query: src[pos:end].
type token struct {
	kind     tokKind
	val      string
	pos, end int
	quoted   bool // tIdent: a "quoted" identifier, not a keyword
	strKind  byte // tString: 0 for '…', else 'E', 'N', 'U' (U&'…'), '$', 'B' or 'X'
	intLit   bool // tNumber: no decimal point or exponent
	expanded bool // tString: continued over a newline, or escapes: val differs from the quoted text
}

// is reports whether t is the keyword kw (lower case): an unquoted
// identifier of that spelling.
func (t token) is(kw string) bool { return t.kind == tIdent && !t.quoted && t.val == kw }

// isPunct reports whether t is the punctuation or operator s.
func (t token) isPunct(s string) bool { return (t.kind == tPunct || t.kind == tOp) && t.val == s }

// lexer splits a query into tokens as PostgreSQL's scanner does
// (src/backend/parser/scan.l), with standard_conforming_strings on.
type lexer struct {
	src  string
	i    int
	toks []token
}

// lex returns the tokens of src, ending with a tEOF token at len(src).
func lex(src string) ([]token, *SyntaxError) {
	l := &lexer{src: src}
	for {
		if err := l.skipSpace(); err != nil {
			return nil, err
		}
		if l.i >= len(src) {
			l.toks = append(l.toks, token{kind: tEOF, pos: len(src), end: len(src)})
			return l.toks, nil
		}
		if err := l.next(); err != nil {
			return nil, err
		}
	}
}

func (l *lexer) errorf(pos, end int, hint, format string, args ...any) *SyntaxError {
	return newError(l.src, pos, end, hint, format, args...)
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}
func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isIdentStart(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c >= 0x80
}
func isIdentCont(c byte) bool { return isIdentStart(c) || isDigit(c) || c == '$' }

// skipSpace skips white space and comments: -- to the end of the line,
// and /* … */, which nest.
func (l *lexer) skipSpace() *SyntaxError {
	src := l.src
	for l.i < len(src) {
		switch {
		case isSpace(src[l.i]):
			l.i++
		case strings.HasPrefix(src[l.i:], "--"):
			if j := strings.IndexByte(src[l.i:], '\n'); j >= 0 {
				l.i += j + 1
			} else {
				l.i = len(src)
			}
		case strings.HasPrefix(src[l.i:], "/*"):
			start, depth := l.i, 0
			for {
				switch {
				case l.i >= len(src):
					return l.errorf(start, start+2, "close it with */ (comments nest: each /* needs its own */)", "unterminated /* comment")
				case strings.HasPrefix(src[l.i:], "/*"):
					depth++
					l.i += 2
				case strings.HasPrefix(src[l.i:], "*/"):
					depth--
					l.i += 2
				default:
					l.i++
				}
				if depth == 0 {
					break
				}
			}
		default:
			return nil
		}
	}
	return nil
}

func (l *lexer) emit(t token) { l.toks = append(l.toks, t) }

// next lexes the token at l.i, which is not space.
func (l *lexer) next() *SyntaxError {
	src, start := l.src, l.i
	c := src[start]
	switch {
	case c == '\'':
		return l.str(start, start, 0)
	case (c == 'e' || c == 'E' || c == 'n' || c == 'N' || c == 'b' || c == 'B' || c == 'x' || c == 'X') && start+1 < len(src) && src[start+1] == '\'':
		return l.str(start, start+1, c&^0x20)
	case (c == 'u' || c == 'U') && strings.HasPrefix(src[start+1:], "&'"):
		return l.str(start, start+2, 'U')
	case (c == 'u' || c == 'U') && strings.HasPrefix(src[start+1:], `&"`):
		return l.quotedIdent(start, start+2, true)
	case c == '"':
		return l.quotedIdent(start, start, false)
	case isIdentStart(c):
		l.i++
		for l.i < len(src) && isIdentCont(src[l.i]) {
			l.i++
		}
		l.emit(token{kind: tIdent, val: foldIdent(src[start:l.i]), pos: start, end: l.i})
		return nil
	case isDigit(c) || c == '.' && start+1 < len(src) && isDigit(src[start+1]):
		return l.number(start)
	case c == '$':
		return l.dollar(start)
	case c == '(' || c == ')' || c == '[' || c == ']' || c == ',' || c == ';' || c == '.':
		l.i++
		l.emit(token{kind: tPunct, val: src[start:l.i], pos: start, end: l.i})
		return nil
	case c == ':':
		l.i++
		if l.i < len(src) && (src[l.i] == ':' || src[l.i] == '=') {
			l.i++
		}
		l.emit(token{kind: tPunct, val: src[start:l.i], pos: start, end: l.i})
		return nil
	case strings.IndexByte(opChars, c) >= 0:
		l.operator(start)
		return nil
	}
	_, size := utf8.DecodeRuneInString(src[start:])
	return l.errorf(start, start+size, `remove it, or quote it: 'text' for a string, "name" for a name`, "unexpected character %q", src[start:start+size])
}

// foldIdent folds an unquoted identifier as PostgreSQL does: ASCII
// letters to lower case, other bytes unchanged.
func foldIdent(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// opChars are the characters of operators; an operator is a run of them.
const opChars = "~!@#^&|`?+-*/%<>="

// operator lexes an operator as PostgreSQL does: the longest run of
// opChars, cut before a comment (-- or /*), and without trailing + or -
// unless it holds one of ~ ! @ # % ^ & | ` ?, so that a*-1 is a * -1.
func (l *lexer) operator(start int) {
	src := l.src
	end := start
	for end < len(src) && strings.IndexByte(opChars, src[end]) >= 0 {
		end++
	}
	op := src[start:end]
	if i := strings.Index(op, "--"); i >= 0 {
		op = op[:i]
	}
	if i := strings.Index(op, "/*"); i >= 0 {
		op = op[:i]
	}
	if len(op) > 1 && (op[len(op)-1] == '+' || op[len(op)-1] == '-') && !strings.ContainsAny(op[:len(op)-1], "~!@#^&|`?%") {
		for len(op) > 1 && (op[len(op)-1] == '+' || op[len(op)-1] == '-') {
			op = op[:len(op)-1]
		}
	}
	l.i = start + len(op)
	t := token{kind: tOp, val: op, pos: start, end: l.i}
	switch op {
	case "!=":
		t.val = "<>"
	case "=>":
		t.kind = tPunct
	}
	l.emit(t)
}

// number lexes a numeric constant: 42, 3.5, .5, 4., 1e-3, 1_000, 0x1F,
// 0o17, 0b101. Like PostgreSQL 16 it rejects letters right after one.
func (l *lexer) number(start int) *SyntaxError {
	src := l.src
	l.i = start
	junk := func() *SyntaxError {
		end := l.i
		for end < len(src) && (isIdentCont(src[end]) || src[end] == '_') {
			end++
		}
		end = min(len(src), max(end, l.i+1))
		return l.errorf(start, end, "separate the number from what follows with a space", "trailing junk after numeric literal %s", src[start:end])
	}
	// digits reads digits of base, with _ between two digits.
	digits := func(ok func(byte) bool) (int, *SyntaxError) {
		n := 0
		for l.i < len(src) {
			switch {
			case ok(src[l.i]):
				l.i++
				n++
			case src[l.i] == '_' && n > 0 && l.i+1 < len(src) && ok(src[l.i+1]):
				l.i++
			case src[l.i] == '_':
				return n, junk()
			default:
				return n, nil
			}
		}
		return n, nil
	}
	isInt := true
	if src[start] == '0' && start+1 < len(src) && strings.IndexByte("xXoObB", src[start+1]) >= 0 {
		var ok func(byte) bool
		switch src[start+1] | 0x20 {
		case 'x':
			ok = func(c byte) bool { return isDigit(c) || 'a' <= c|0x20 && c|0x20 <= 'f' }
		case 'o':
			ok = func(c byte) bool { return '0' <= c && c <= '7' }
		default:
			ok = func(c byte) bool { return c == '0' || c == '1' }
		}
		l.i += 2
		if l.i < len(src) && src[l.i] == '_' {
			l.i++ // 0x_1F is allowed
		}
		if n, err := digits(ok); err != nil {
			return err
		} else if n == 0 || l.i < len(src) && isDigit(src[l.i]) {
			return junk()
		}
	} else {
		if _, err := digits(isDigit); err != nil {
			return err
		}
		if l.i < len(src) && src[l.i] == '.' && !(l.i+1 < len(src) && src[l.i+1] == '.') {
			isInt = false
			l.i++
			if _, err := digits(isDigit); err != nil {
				return err
			}
		}
		if l.i < len(src) && (src[l.i] == 'e' || src[l.i] == 'E') {
			save := l.i
			l.i++
			if l.i < len(src) && (src[l.i] == '+' || src[l.i] == '-') {
				l.i++
			}
			if n, err := digits(isDigit); err != nil {
				return err
			} else if n == 0 {
				l.i = save
				return junk()
			}
			isInt = false
		}
	}
	if l.i < len(src) && isIdentStart(src[l.i]) {
		return junk()
	}
	lit := strings.ReplaceAll(src[start:l.i], "_", "")
	l.emit(token{kind: tNumber, val: decimalValue(lit), pos: start, end: l.i, intLit: isInt})
	return nil
}

// dollar lexes $1 (a parameter) or a dollar-quoted string: $$…$$ or
// $tag$…$tag$.
func (l *lexer) dollar(start int) *SyntaxError {
	src := l.src
	j := start + 1
	if j < len(src) && isDigit(src[j]) {
		for j < len(src) && isDigit(src[j]) {
			j++
		}
		l.i = j
		l.emit(token{kind: tParam, val: src[start:j], pos: start, end: j})
		return nil
	}
	if j < len(src) && isIdentStart(src[j]) {
		for j < len(src) && (isIdentStart(src[j]) || isDigit(src[j])) {
			j++
		}
	}
	if j >= len(src) || src[j] != '$' {
		return l.errorf(start, start+1, "write a dollar-quoted string as $$text$$ or $tag$text$tag$", "unexpected $")
	}
	tag := src[start : j+1]
	body := j + 1
	k := strings.Index(src[body:], tag)
	if k < 0 {
		return l.errorf(start, j+1, "close it with "+tag, "unterminated dollar-quoted string")
	}
	l.i = body + k + len(tag)
	l.emit(token{kind: tString, val: src[body : body+k], pos: start, end: l.i, strKind: '$'})
	return nil
}

// str lexes a quoted string whose opening quote is at q, with the prefix
// src[start:q] (E, N, B, X or U&), and the strings that continue it: a
// quoted string after white space holding a newline is the same string.
func (l *lexer) str(start, q int, kind byte) *SyntaxError {
	src := l.src
	var b strings.Builder
	expanded := false
	l.i = q
	for {
		l.i++ // the opening quote
		for {
			if l.i >= len(src) {
				return l.errorf(start, q+1, "close it with ' (write '' for a quote inside)", "unterminated quoted string")
			}
			c := src[l.i]
			if c == '\'' {
				if l.i+1 < len(src) && src[l.i+1] == '\'' {
					b.WriteByte('\'')
					expanded = true
					l.i += 2
					continue
				}
				l.i++
				break
			}
			if c == '\\' && kind == 'E' {
				if err := l.escape(&b); err != nil {
					return err
				}
				expanded = true
				continue
			}
			b.WriteByte(c)
			l.i++
		}
		// A continuation: white space with a newline, then a quote.
		j, newline := l.i, false
		for j < len(src) && isSpace(src[j]) {
			newline = newline || src[j] == '\n'
			j++
		}
		if !newline || j >= len(src) || src[j] != '\'' {
			break
		}
		expanded = true
		l.i = j
	}
	val := b.String()
	if kind == 'U' {
		var err *SyntaxError
		if val, err = l.unicodeEscapes(start, val); err != nil {
			return err
		}
		expanded = true
	}
	if !utf8.ValidString(val) || strings.IndexByte(val, 0) >= 0 {
		return l.errorf(start, l.i, `write a character as itself or as \uXXXX, not as bytes (\xHH, \ooo) that are not UTF-8`, "the string's escapes make bytes that are not UTF-8 text")
	}
	l.emit(token{kind: tString, val: val, pos: start, end: l.i, strKind: kind, expanded: expanded})
	return nil
}

// escape reads the backslash escape at l.i of an E'…' string into b.
func (l *lexer) escape(b *strings.Builder) *SyntaxError {
	src, start := l.src, l.i
	l.i++ // the backslash
	if l.i >= len(src) {
		return nil // the unterminated string is reported
	}
	c := src[l.i]
	l.i++
	hex := func(max int) (uint64, int) {
		j := l.i
		for j < len(src) && j-l.i < max && strings.IndexByte("0123456789abcdefABCDEF", src[j]) >= 0 {
			j++
		}
		v, _ := strconv.ParseUint(src[l.i:j], 16, 32)
		n := j - l.i
		l.i = j
		return v, n
	}
	switch c {
	case 'b':
		b.WriteByte('\b')
	case 'f':
		b.WriteByte('\f')
	case 'n':
		b.WriteByte('\n')
	case 'r':
		b.WriteByte('\r')
	case 't':
		b.WriteByte('\t')
	case '0', '1', '2', '3', '4', '5', '6', '7':
		v := uint(c - '0')
		for k := 0; k < 2 && l.i < len(src) && '0' <= src[l.i] && src[l.i] <= '7'; k++ {
			v = v*8 + uint(src[l.i]-'0')
			l.i++
		}
		b.WriteByte(byte(v))
	case 'x':
		if v, n := hex(2); n > 0 {
			b.WriteByte(byte(v))
		} else {
			b.WriteByte('x')
		}
	case 'u', 'U':
		want := 4
		if c == 'U' {
			want = 8
		}
		v, n := hex(want)
		if n != want || !validRune(v) {
			return l.errorf(start, l.i, "write \\uXXXX or \\UXXXXXXXX with a valid code point", "invalid Unicode escape")
		}
		if 0xD800 <= v && v <= 0xDBFF { // a surrogate pair: \uD83D\uDE00
			if strings.HasPrefix(src[l.i:], `\u`) {
				l.i += 2
				if lo, n := hex(4); n == 4 && 0xDC00 <= lo && lo <= 0xDFFF {
					b.WriteRune(rune(0x10000 + (v-0xD800)<<10 + lo - 0xDC00))
					return nil
				}
			}
			return l.errorf(start, l.i, "", "invalid Unicode surrogate pair")
		}
		if 0xDC00 <= v && v <= 0xDFFF {
			return l.errorf(start, l.i, "", "invalid Unicode surrogate pair")
		}
		b.WriteRune(rune(v))
	default:
		b.WriteByte(c)
	}
	return nil
}

func validRune(v uint64) bool { return v > 0 && v <= 0x10FFFF }

// uescape reads an optional UESCAPE 'c' after a U& string or identifier,
// returning the escape character.
func (l *lexer) uescape() (byte, *SyntaxError) {
	save := l.i
	if err := l.skipSpace(); err != nil {
		return 0, err
	}
	src := l.src
	j := l.i
	for j < len(src) && isIdentCont(src[j]) {
		j++
	}
	if foldIdent(src[l.i:j]) != "uescape" {
		l.i = save
		return '\\', nil
	}
	kw := l.i
	l.i = j
	if err := l.skipSpace(); err != nil {
		return 0, err
	}
	if l.i+2 < len(src) && src[l.i] == '\'' && src[l.i+2] == '\'' {
		c := src[l.i+1]
		if !(isDigit(c) || 'a' <= c|0x20 && c|0x20 <= 'f' || c == '+' || c == '\'' || c == '"' || isSpace(c)) {
			l.i += 3
			return c, nil
		}
	}
	return 0, l.errorf(kw, j, "write UESCAPE and one character in quotes, not a hex digit, +, quote or space: UESCAPE '!'", "invalid UESCAPE")
}

// unicodeEscapes decodes the escapes of a U& string or identifier body:
// \XXXX, \+XXXXXX and \\ (with the UESCAPE character for \).
func (l *lexer) unicodeEscapes(start int, body string) (string, *SyntaxError) {
	esc, err := l.uescape()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	bad := func() (string, *SyntaxError) {
		return "", l.errorf(start, l.i, `write \XXXX or \+XXXXXX with a valid code point, or \\ for \`, "invalid Unicode escape")
	}
	hexAt := func(i, n int) (uint64, bool) {
		if i+n > len(body) {
			return 0, false
		}
		v, err := strconv.ParseUint(body[i:i+n], 16, 32)
		return v, err == nil && !strings.ContainsAny(body[i:i+n], "+-")
	}
	var high uint64
	for i := 0; i < len(body); {
		if body[i] != esc {
			if high != 0 {
				return bad()
			}
			b.WriteByte(body[i])
			i++
			continue
		}
		var v uint64
		var ok bool
		switch {
		case i+1 < len(body) && body[i+1] == esc:
			if high != 0 {
				return bad()
			}
			b.WriteByte(esc)
			i += 2
			continue
		case i+1 < len(body) && body[i+1] == '+':
			v, ok = hexAt(i+2, 6)
			i += 8
		default:
			v, ok = hexAt(i+1, 4)
			i += 5
		}
		switch {
		case !ok || !validRune(v):
			return bad()
		case 0xD800 <= v && v <= 0xDBFF && high == 0:
			high = v
		case 0xDC00 <= v && v <= 0xDFFF && high != 0:
			b.WriteRune(rune(0x10000 + (high-0xD800)<<10 + v - 0xDC00))
			high = 0
		case high != 0 || 0xD800 <= v && v <= 0xDFFF:
			return bad()
		default:
			b.WriteRune(rune(v))
		}
	}
	if high != 0 {
		return bad()
	}
	return b.String(), nil
}

// quotedIdent lexes "…" (with "" for a quote), or U&"…" when unicode,
// whose opening quote is at q.
func (l *lexer) quotedIdent(start, q int, unicode bool) *SyntaxError {
	src := l.src
	var b strings.Builder
	l.i = q + 1
	for {
		if l.i >= len(src) {
			return l.errorf(start, q+1, `close it with " (write "" for a quote inside)`, "unterminated quoted identifier")
		}
		if src[l.i] == '"' {
			if l.i+1 < len(src) && src[l.i+1] == '"' {
				b.WriteByte('"')
				l.i += 2
				continue
			}
			l.i++
			break
		}
		b.WriteByte(src[l.i])
		l.i++
	}
	val := b.String()
	if unicode {
		var err *SyntaxError
		if val, err = l.unicodeEscapes(start, val); err != nil {
			return err
		}
	}
	if val == "" {
		return l.errorf(start, l.i, "a quoted name needs at least one character", `zero-length delimited identifier ""`)
	}
	if strings.IndexByte(val, 0) >= 0 {
		return l.errorf(start, l.i, "", "a name cannot hold a NUL character")
	}
	l.emit(token{kind: tIdent, val: val, pos: start, end: l.i, quoted: true})
	return nil
}
