package sqlname

import "testing"

func TestQuote(t *testing.T) {
	for name, want := range map[string]string{`t`: `"t"`, `it's "q"`: `"it's ""q"""`, ``: `""`} {
		if got := Quote(name); got != want {
			t.Errorf("Quote(%q) = %s, want %s", name, got, want)
		}
	}
}

func TestLiteral(t *testing.T) {
	for s, want := range map[string]string{`x`: `'x'`, `it's`: `'it''s'`, ``: `''`} {
		if got := Literal(s); got != want {
			t.Errorf("Literal(%q) = %s, want %s", s, got, want)
		}
	}
}

func TestSQLiteURI(t *testing.T) {
	if got, want := SQLiteURI("/d/a%b?c#e.db", "mode=rw"), "file:/d/a%25b%3fc%23e.db?mode=rw"; got != want {
		t.Errorf("SQLiteURI = %s, want %s", got, want)
	}
}
