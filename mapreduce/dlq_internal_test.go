package mapreduce

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
)

// FuzzParseDeadLetters: any bytes give letters or an error naming a line,
// never a panic; whatever parses re-encodes to what parses the same.
func FuzzParseDeadLetters(f *testing.F) {
	f.Add([]byte(`{"job":"daily_rollup","run":"r","partition":3,"cursor":42,"row":{"payload":"["},"error_id":1,"error":"payload is not a JSON object","attempts":1,"time":"2026-11-29T09:00:00Z"}` + "\n" +
		`{"job":"daily_rollup","run":"r","partition":3,"cursor":43,"row":{"payload":"]"},"error_id":1,"attempts":1,"time":"2026-11-29T09:00:00Z"}` + "\n"))
	f.Add([]byte("{\"error_id\":1}\n{\"cursor\":1,\"error_id\":2,\"stack\":\"\\tx.go:1\"}\n{\"cursor\""))
	f.Add([]byte("not json\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		letters, err := parseDeadLetters(data)
		if err != nil {
			return
		}
		var again bytes.Buffer
		var enc letterEncoder
		for _, l := range letters {
			line, err := enc.encode(&l)
			if err != nil {
				return // a value JSON cannot hold
			}
			again.Write(line)
		}
		back, err := parseDeadLetters(again.Bytes())
		if err != nil || len(back) != len(letters) {
			t.Fatalf("re-encoded letters do not parse back: %v (%d of %d)", err, len(back), len(letters))
		}
		for i, l := range back {
			if errorKey(l.Error, l.Stack) != errorKey(letters[i].Error, letters[i].Stack) || l.Cursor != letters[i].Cursor {
				t.Fatalf("letter %d parses back as %+v, was %+v", i, l, letters[i])
			}
		}
	})
}

// TestLetterEncoder: identical errors are written once per file, with
// their stack; an error that differs in its text or its frames is another
// one; every letter parses back with its error and stack; and past
// maxSharedErrors new errors are written in full, still numbered in order.
func TestLetterEncoder(t *testing.T) {
	t.Parallel()
	stack := func(goroutine int, arg string, line int) string {
		return fmt.Sprintf("goroutine %d [running]:\nmain.f(%s)\n\t/src/f.go:%d +0x1d\ncreated by main.g in goroutine 1\n\t/src/g.go:3 +0x2a\n", goroutine, arg, line)
	}
	letters := []DeadLetter{
		{Cursor: 1, Error: "panic: boom", Stack: stack(7, "0xc000010000", 10)},
		{Cursor: 2, Error: "panic: boom", Stack: stack(8, "0xc000020000", 10)}, // same frames
		{Cursor: 3, Error: "bad row"},
		{Cursor: 4, Error: "panic: boom", Stack: stack(7, "0xc000010000", 11)}, // another line
		{Cursor: 5, Error: "bad row"},
		{Cursor: 6, Error: "panic: bang", Stack: stack(7, "0xc000010000", 10)}, // another text
	}
	var enc letterEncoder
	var file []byte
	for _, l := range letters {
		line, err := enc.encode(&l)
		if err != nil {
			t.Fatal(err)
		}
		file = append(file, line...)
	}
	var ids []int
	var stacks int
	for _, line := range bytes.SplitAfter(bytes.TrimSuffix(file, []byte("\n")), []byte("\n")) {
		var l letterLine
		if err := json.Unmarshal(line, &l); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, l.ErrorID)
		if l.Stack != "" {
			stacks++
		}
	}
	if want := []int{1, 1, 2, 3, 2, 4}; !slices.Equal(ids, want) || stacks != 3 {
		t.Errorf("error ids %v with %d stacks, want %v with 3", ids, stacks, want)
	}
	back, err := parseDeadLetters(file)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range back {
		want := letters[i]
		if l.Cursor != want.Cursor || l.Error != want.Error || errorKey(l.Error, l.Stack) != errorKey(want.Error, want.Stack) {
			t.Errorf("letter %d = %+v, want %+v", i, l, want)
		}
	}
	if back[1].Stack != letters[0].Stack {
		t.Errorf("the second panic has stack %q, want the first one's", back[1].Stack)
	}

	enc = letterEncoder{}
	file = nil
	for i := range maxSharedErrors + 3 {
		line, err := enc.encode(&DeadLetter{Cursor: int64(i), Error: fmt.Sprintf("row %d", i%(maxSharedErrors+1))})
		if err != nil {
			t.Fatal(err)
		}
		file = append(file, line...)
	}
	back, err = parseDeadLetters(file)
	if err != nil || len(back) != maxSharedErrors+3 || back[maxSharedErrors+2].Error != "row 1" || len(enc.ids) != maxSharedErrors {
		t.Errorf("past maxSharedErrors: %v, %d letters, the last %+v, %d errors remembered", err, len(back), back[len(back)-1], len(enc.ids))
	}
}

// A committed dead-letter file is whole: a torn last line, a malformed
// one or one that names an error no line before it defined is an error
// naming the line.
func TestParseDeadLetters_Damaged(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"{\"cursor\":1,\"error_id\":1}\n{\"cursor\":2,\"error_id\":1}\n{\"curs": "line 3 is not terminated",
		"{\"cursor\":1,\"error_id\":1}\nnot json\n":                             "line 2: invalid character 'o' in literal null (expecting 'u')",
		"{\"cursor\":1,\"error_id\":1}\n{\"cursor\":2,\"error_id\":3}\n":        "line 2: error 3 is not defined (lines before it define errors 1 to 1)",
		"{\"cursor\":1}\n": "line 1: error 0 is not defined (lines before it define errors 1 to 0)",
		"{\"error_id\":1,\"error\":\"a\"}\n{\"error_id\":1,\"error\":\"b\"}\n": "line 2: error 1 is defined twice",
	} {
		if _, err := parseDeadLetters([]byte(in)); err == nil || err.Error() != want {
			t.Errorf("parseDeadLetters(%q) = %v, want %q", in, err, want)
		}
	}
}
