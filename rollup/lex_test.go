package rollup

import (
	"strings"
	"testing"
)

// tokString spells toks for comparing: kind:value, one per token.
func tokString(toks []token) string {
	var parts []string
	for _, t := range toks {
		var k string
		switch t.kind {
		case tEOF:
			continue
		case tIdent:
			k = "id"
			if t.quoted {
				k = "qid"
			}
		case tString:
			k = "str"
			if t.strKind != 0 {
				k += string(t.strKind)
			}
		case tNumber:
			k = "num"
			if t.intLit {
				k = "int"
			}
		case tParam:
			k = "param"
		case tOp:
			k = "op"
		case tPunct:
			k = "p"
		}
		parts = append(parts, k+":"+t.val)
	}
	return strings.Join(parts, " ")
}

func TestLex(t *testing.T) {
	t.Parallel()
	tests := []struct{ src, want string }{
		{`SELECT Foo, "Bar", "a""b"`, `id:select id:foo p:, qid:Bar p:, qid:a"b`},
		{`a$1 _x café`, `id:a$1 id:_x id:café`},
		{`'it''s' ''`, `str:it's str:`},
		{"'a'\n  'b' 'c'", `str:ab str:c`},
		{"'a' 'b'", `str:a str:b`},
		{`E'a\nb\t\\\'\x41\101\u00e9\U0001F600\q'`, "strE:a\nb\t\\'AAé😀q"},
		{`e'\uD83D\uDE00'`, "strE:😀"},
		{`N'x' B'101' X'1F' b'0'`, `strN:x strB:101 strX:1F strB:0`},
		{`U&'d\0061t\+000061' U&'d!0061t' UESCAPE '!'`, `strU:data strU:dat`},
		{`U&"d\0061t\\"`, `qid:dat\`},
		{`$$it's$$ $tag$a $$ b$tag$ $a$x$$y$a$ $_1$$_1$`, `str$:it's str$:a $$ b str$:x$$y str$:`},
		{`$1 $23`, `param:$1 param:$23`},
		{`1 1.5 .5 4. 1e-3 1.5E+10 1_000 0x1F 0o17 0b101 0X_ff`, `int:1 num:1.5 num:0.5 num:4.0 num:1e-3 num:1.5E+10 int:1000 int:31 int:15 int:5 int:255`},
		{`a*-1 a<>-1 a<=b a!=b a>=-b a@-b |/x a~*b`, `id:a op:* op:- int:1 id:a op:<> op:- int:1 id:a op:<= id:b id:a op:<> id:b id:a op:>= op:- id:b id:a op:@- id:b op:|/ id:x id:a op:~* id:b`},
		{`x::numeric(12,2) a:=b a=>b arr[1:2]`, `id:x p::: id:numeric p:( int:12 p:, int:2 p:) id:a p::= id:b id:a p:=> id:b id:arr p:[ int:1 p:: int:2 p:]`},
		{"a -- comment\n b /* c /* nested */ still */ c", `id:a id:b id:c`},
		{"a+-- c\nb a/*c*/-b", `id:a op:+ id:b id:a op:- id:b`},
		{`t.c "s"."t" ;`, `id:t p:. id:c qid:s p:. qid:t p:;`},
	}
	for _, tt := range tests {
		toks, err := lex(tt.src)
		if err != nil {
			t.Errorf("lex(%q): %v", tt.src, err)
			continue
		}
		if got := tokString(toks); got != tt.want {
			t.Errorf("lex(%q)\n got %s\nwant %s", tt.src, got, tt.want)
		}
	}
}

func TestLex_Spans(t *testing.T) {
	t.Parallel()
	src := "SELECT  E'a''b' /* c */ \"q\"\"x\", 1_0::int"
	toks, err := lex(src)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tok := range toks[:len(toks)-1] {
		got = append(got, src[tok.pos:tok.end])
	}
	if want := `SELECT|E'a''b'|"q""x"|,|1_0|::|int`; strings.Join(got, "|") != want {
		t.Errorf("token texts %s, want %s", strings.Join(got, "|"), want)
	}
	if eof := toks[len(toks)-1]; eof.kind != tEOF || eof.pos != len(src) {
		t.Errorf("last token %+v, want EOF at %d", eof, len(src))
	}
}

func TestLex_Errors(t *testing.T) {
	t.Parallel()
	tests := []struct{ src, want string }{
		{`'abc`, "unterminated quoted string"},
		{`E'abc\'`, "unterminated quoted string"},
		{`"abc`, "unterminated quoted identifier"},
		{`""`, "zero-length delimited identifier"},
		{`/* a /* b */`, "unterminated /* comment"},
		{`$x$abc`, "unterminated dollar-quoted string"},
		{`$ a`, "unexpected $"},
		{`1abc`, "trailing junk after numeric literal 1abc"},
		{`1_`, "trailing junk"},
		{`1__0`, "trailing junk"},
		{`0x`, "trailing junk"},
		{`1e`, "trailing junk"},
		{`0b102`, "trailing junk"},
		{`E'\xff'`, "not UTF-8"},
		{`E'\0'`, "not UTF-8"},
		{`E'\u12'`, "invalid Unicode escape"},
		{`E'\uD83D'`, "surrogate"},
		{`U&'\zzzz'`, "invalid Unicode escape"},
		{`U&'\D83D'`, "invalid Unicode escape"},
		{`U&'x' UESCAPE 'a'`, "invalid UESCAPE"},
		{`a { b`, `unexpected character "{"`},
		{`a \ b`, `unexpected character "\\"`},
	}
	for _, tt := range tests {
		_, err := lex(tt.src)
		if err == nil || !strings.Contains(err.Msg, tt.want) {
			t.Errorf("lex(%q) = %v, want an error with %q", tt.src, err, tt.want)
		}
	}
}
