package rollup

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// SyntaxError is Parse's error: what is wrong or unsupported, where, and
// what to do. Its Error is the whole message for a user:
//
//	line 3, column 12: HAVING is not supported
//	  GROUP BY 1 HAVING count(*) > 1
//	             ^^^^^^
//	mr rollup writes every group; filter the output table when you read it
type SyntaxError struct {
	Pos  int    // byte offset into the query of the part it is about
	End  int    // the end of that part (Pos at the end of the query)
	Line int    // 1-based line of Pos
	Col  int    // 1-based column of Pos, in characters
	Msg  string // what is wrong, naming the part
	Hint string // what to do; "" when Msg says it

	query string
}

func (e *SyntaxError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "line %d, column %d: %s", e.Line, e.Col, e.Msg)
	line, caret := excerpt(e.query, e.Pos, e.End)
	b.WriteString("\n  ")
	b.WriteString(line)
	b.WriteString("\n  ")
	b.WriteString(caret)
	if e.Hint != "" {
		b.WriteString("\n")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// excerptWidth is how many characters of a long line an error shows
// around its caret: queries typed on the command line are one long line.
const excerptWidth = 76

// excerpt returns the line of query that holds pos, cut to excerptWidth
// characters around pos with … where cut, and under it a caret line
// marking [pos, end) on that line (one ^ at least). Tabs before the
// caret are kept so that it lines up in a terminal.
func excerpt(query string, pos, end int) (line, caret string) {
	start := strings.LastIndexByte(query[:pos], '\n') + 1
	stop := len(query)
	if i := strings.IndexByte(query[pos:], '\n'); i >= 0 {
		stop = pos + i
	}
	end = min(max(end, pos), stop)
	text := strings.TrimSuffix(query[start:stop], "\r")
	runes := []rune(text)
	col := utf8.RuneCountInString(query[start:pos])
	width := max(1, utf8.RuneCountInString(query[pos:end]))
	from, to := 0, len(runes)
	if to > excerptWidth {
		from = max(0, min(col-excerptWidth/2, to-excerptWidth))
		to = min(to, from+excerptWidth)
	}
	var l, c strings.Builder
	if from > 0 {
		l.WriteString("…")
		c.WriteString(" ")
	}
	for i, r := range runes[from:to] {
		if r != '\t' && unicode.IsControl(r) {
			r = utf8.RuneError
		}
		l.WriteRune(r)
		if from+i < col {
			if r == '\t' {
				c.WriteByte('\t')
			} else {
				c.WriteByte(' ')
			}
		}
	}
	if to < len(runes) {
		l.WriteString("…")
	}
	c.WriteString(strings.Repeat("^", max(1, min(width, to-col))))
	return l.String(), c.String()
}

// newError returns the *SyntaxError about query[pos:end]. The message
// stays one line of text whatever user text it quotes.
func newError(query string, pos, end int, hint, format string, args ...any) *SyntaxError {
	msg := strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r' || r == '\f' || r == '\v':
			return ' '
		case unicode.IsControl(r):
			return utf8.RuneError
		}
		return r
	}, fmt.Sprintf(format, args...))
	line := 1 + strings.Count(query[:pos], "\n")
	col := 1 + utf8.RuneCountInString(query[strings.LastIndexByte(query[:pos], '\n')+1:pos])
	return &SyntaxError{Pos: pos, End: end, Line: line, Col: col, Msg: msg, Hint: hint, query: query}
}
