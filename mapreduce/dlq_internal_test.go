package mapreduce

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzParseDeadLetters: any bytes give letters or an error naming a line,
// never a panic; whatever parses re-encodes to what parses the same.
func FuzzParseDeadLetters(f *testing.F) {
	f.Add([]byte(`{"job":"daily_rollup","run":"r","partition":3,"cursor":42,"row":{"payload":"["},"error":"payload is not a JSON object","attempts":1,"time":"2026-11-29T09:00:00Z"}` + "\n"))
	f.Add([]byte("{}\n{\"cursor\":1}\n{\"cursor\""))
	f.Add([]byte("not json\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		letters, err := parseDeadLetters(data)
		if err != nil {
			return
		}
		var again bytes.Buffer
		for _, l := range letters {
			line, err := json.Marshal(l)
			if err != nil {
				return // a row value JSON cannot hold; the writer handles that
			}
			again.Write(append(line, '\n'))
		}
		back, err := parseDeadLetters(again.Bytes())
		if err != nil || len(back) != len(letters) {
			t.Fatalf("re-encoded letters do not parse back: %v (%d of %d)", err, len(back), len(letters))
		}
	})
}

// A committed dead-letter file is whole: a torn last line or a malformed
// one is an error naming the line.
func TestParseDeadLetters_Damaged(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"{\"cursor\":1}\n{\"cursor\":2}\n{\"curs": "line 3 is not terminated",
		"{\"cursor\":1}\nnot json\n":              "line 2: invalid character 'o' in literal null (expecting 'u')",
	} {
		if _, err := parseDeadLetters([]byte(in)); err == nil || err.Error() != want {
			t.Errorf("parseDeadLetters(%q) = %v, want %q", in, err, want)
		}
	}
}
