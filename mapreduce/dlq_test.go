package mapreduce_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/mrengine/mr/mapreduce"
)

// FuzzReadDeadLetters: any bytes give letters or an error naming a line,
// never a panic; whatever parses re-encodes to what parses the same.
func FuzzReadDeadLetters(f *testing.F) {
	f.Add([]byte(`{"job":"daily_rollup","run":"r","partition":3,"cursor":42,"row":{"payload":"["},"error":"payload is not a JSON object","attempts":1,"time":"2026-11-29T09:00:00Z"}` + "\n"))
	f.Add([]byte("{}\n{\"cursor\":1}\n{\"cursor\""))
	f.Add([]byte("not json\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		letters, err := mapreduce.ReadDeadLetters(data)
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
		back, err := mapreduce.ReadDeadLetters(again.Bytes())
		if err != nil || len(back) != len(letters) {
			t.Fatalf("re-encoded letters do not parse back: %v (%d of %d)", err, len(back), len(letters))
		}
	})
}

func TestReadDeadLetters_TornLastLine(t *testing.T) {
	t.Parallel()
	letters, err := mapreduce.ReadDeadLetters([]byte("{\"cursor\":1}\n{\"cursor\":2}\n{\"curs"))
	if err != nil || len(letters) != 2 || letters[1].Cursor != 2 {
		t.Errorf("got %v, %v; want the two complete letters", letters, err)
	}
	if _, err := mapreduce.ReadDeadLetters([]byte("{\"cursor\":1}\nnot json\n")); err == nil || err.Error()[:6] != "line 2" {
		t.Errorf("a malformed line gave %v, want an error naming line 2", err)
	}
}
