package jobs

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// jsonCases are payloads at the edges of IsJSONObject's rule: whitespace,
// other JSON values, broken documents, and nesting at and past
// encoding/json's limit of 10,000 levels, just under and over the length
// at which IsJSONObject switches validators.
var jsonCases = []string{
	`{"a":1}`, " \n\t{}", `{"a":`, `[1,2]`, `"x"`, ``, `   `, `plain text`, `{} {}`, `{}x`, "\v{}",
	`{"a":"\u00e9\n"}`, `{"a":"\x"}`, "{\"a\":\"\x01\"}", `{"a":1e}`, `{"a":-0.5E+3}`, `{"a":01}`,
	`{"a":[true,false,null]}`, `{"a":tru}`, `{,}`, `{"a":1,}`, "{\"a\":\"\xff\"}",
	deep(9_997), deep(9_998), deep(9_999), deep(10_000), deep(20_000),
	strings.Repeat("{", 20_000), "{" + strings.Repeat("[", 19_999), "{" + strings.Repeat("[", 10_000_000),
}

// deep is an object holding arrays nested n deep: 2n+5 bytes, n+1
// levels. deep(9_997) is the deepest that gjson checks (19,999 bytes),
// deep(9_999) the deepest that encoding/json accepts.
func deep(n int) string {
	return `{"":` + strings.Repeat("[", n) + strings.Repeat("]", n) + "}"
}

// referenceIsJSONObject is the rule IsJSONObject must match, in its
// plainest form.
func referenceIsJSONObject(p []byte) bool {
	p = bytes.TrimLeft(p, " \t\r\n")
	return len(p) > 0 && p[0] == '{' && json.Valid(p)
}

func TestIsJSONObject(t *testing.T) {
	t.Parallel()
	for _, in := range jsonCases {
		if got, want := IsJSONObject([]byte(in)), referenceIsJSONObject([]byte(in)); got != want {
			t.Errorf("IsJSONObject(%.40q…, %d bytes) = %t, want %t as encoding/json says", in, len(in), got, want)
		}
	}
	for in, want := range map[string]bool{`{"a":1}`: true, " \n\t{}": true, `{"a":`: false, `[1,2]`: false, deep(9_997): true, deep(9_999): true, deep(10_000): false} {
		if got := IsJSONObject([]byte(in)); got != want {
			t.Errorf("IsJSONObject(%.40q…) = %t, want %t", in, got, want)
		}
	}
}

func FuzzIsJSONObject(f *testing.F) {
	for _, in := range jsonCases {
		if len(in) <= 2*shortPayload {
			f.Add([]byte(in))
		}
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		if got, want := IsJSONObject(p), referenceIsJSONObject(p); got != want {
			t.Errorf("IsJSONObject(%q) = %t, encoding/json says %t", p, got, want)
		}
	})
}

func BenchmarkIsJSONObject(b *testing.B) {
	p := []byte(`{"channel":"web","sku":"sku-1234","qty":3,"tags":["a","b"],"meta":{"ref":"x-19","ok":true}}`)
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if !IsJSONObject(p) {
			b.Fatal("not an object")
		}
	}
}
