package mapreduce

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/mrengine/mr/internal/blobs"
)

// DeadLetter is one row that failed Map on every attempt.
type DeadLetter struct {
	Job       string `json:"job"`
	Run       string `json:"run"`
	Partition int    `json:"partition"`
	Cursor    int64  `json:"cursor"`
	// Tie is the row's tie-breaker when the run's cursor is compound
	// (see Input.CursorColumns): Cursor and Tie together name the row.
	Tie      *int64         `json:"tie,omitempty"`
	Row      map[string]any `json:"row"`
	Error    string         `json:"error"`
	Stack    string         `json:"stack,omitempty"` // where Map panicked, if it did
	Attempts int            `json:"attempts"`
	Time     time.Time      `json:"time"`
}

// DeadLetterFile is a committed dead-letter file: the letters of one commit of
// one partition, one JSON object per line (see letterLine), in blob storage
// at Key (see dlqKey). A partition's dead-letter queue is the sequence of files its
// checkpoint names; the size and checksum pin each file's contents, so a
// file changed or lost since its commit is an error, never silently
// fewer letters.
type DeadLetterFile struct {
	Key      string `json:"key"`
	Size     int64  `json:"size"`
	Letters  int    `json:"letters"`
	Checksum uint64 `json:"checksum"` // XXH64 of the file's bytes
}

// dlqKey names the dead-letter file of the seq-th commit of partition
// part of run: <run>/dlq/p<part>-<seq>-<attempt>.jsonl.
func dlqKey(run string, part, seq int, attempt string) string {
	return fmt.Sprintf("%s/%sp%04d-%06d-%s.jsonl", run, dlqPrefix, part, seq, attempt)
}

// replayDLQKey names the dead-letter file of partition part that replay
// generation gen rewrote: <run>/dlq/p<part>-g<gen>-<attempt>.jsonl.
func replayDLQKey(run string, part, gen int, attempt string) string {
	return fmt.Sprintf("%s/%sp%04d-g%04d-%s.jsonl", run, dlqPrefix, part, gen, attempt)
}

// dlqPrefix is the key prefix, after "<run>/", of dead-letter files.
const dlqPrefix = "dlq/"

// letterLine is a dead letter as a line of a dead-letter file. Identical
// errors are stored once per file, because a Map bug fails every row the
// same way and a panic's stack is most of a letter: each line names its
// error by number, and the first line with a number holds the error's
// text and stack, which the later lines with that number share. Numbers
// count from 1 in the order they first appear:
//
//	{"job":"j","run":"r","partition":0,"cursor":7,"row":{…},"error_id":1,"error":"panic: boom","stack":"goroutine 9 […","attempts":4,"time":"…"}
//	{"job":"j","run":"r","partition":0,"cursor":1709294400000000,"tie":42,"row":{…},"error_id":1,"attempts":4,"time":"…"}  (a compound cursor's)
//	{"job":"j","run":"r","partition":0,"cursor":8,"row":{…},"error_id":1,"attempts":4,"time":"…"}
//
// Two errors are identical when their texts and the frames of their
// stacks (see errorKey) are. Every row still has a line of its own: the
// DLQ holds each failed row once, and mr dlq replay needs the rows.
type letterLine struct {
	Job       string         `json:"job"`
	Run       string         `json:"run"`
	Partition int            `json:"partition"`
	Cursor    int64          `json:"cursor"`
	Tie       *int64         `json:"tie,omitempty"`
	Row       map[string]any `json:"row"`
	ErrorID   int            `json:"error_id"`
	Error     string         `json:"error,omitempty"`
	Stack     string         `json:"stack,omitempty"`
	Attempts  int            `json:"attempts"`
	Time      time.Time      `json:"time"`
}

// errorKey is what identifies an error among dead letters: its text and
// the frames of its stack, the tab-indented "file:line +0xpc" lines of
// debug.Stack. The other lines differ between rows that panic at the same
// place: the goroutine's number, and the words of each function's
// arguments (pointers into the row's chunk, say).
func errorKey(text, stack string) string {
	var b strings.Builder
	b.WriteString(text)
	for line := range strings.Lines(stack) {
		if strings.HasPrefix(line, "\t") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// maxSharedErrors bounds the distinct errors a dead-letter file's writer
// remembers, so that a Map whose errors all differ (each naming its row)
// costs no memory per letter: past it, a new error is written in full
// under a new number, as if it were the first of its kind.
const maxSharedErrors = 1024

// letterEncoder encodes the lines of one dead-letter file.
type letterEncoder struct {
	ids  map[string]int // errorKey → number, for up to maxSharedErrors
	last int            // the highest number given
}

// encode returns l's line, newline included.
func (e *letterEncoder) encode(l *DeadLetter) ([]byte, error) {
	line := letterLine{Job: l.Job, Run: l.Run, Partition: l.Partition, Cursor: l.Cursor, Tie: l.Tie, Row: l.Row, Attempts: l.Attempts, Time: l.Time}
	key := errorKey(l.Error, l.Stack)
	id, shared := e.ids[key]
	if !shared {
		id = e.last + 1
		line.Error, line.Stack = l.Error, l.Stack
	}
	line.ErrorID = id
	data, err := json.Marshal(line)
	if err != nil {
		// A row value JSON cannot hold (NaN, say): keep the letter, say so.
		l.Row = map[string]any{"unencodable": fmt.Sprint(l.Row)}
		line.Row = l.Row
		if data, err = json.Marshal(line); err != nil {
			return nil, err
		}
	}
	if !shared { // only now: a line not written defines nothing
		e.last = id
		if e.ids == nil {
			e.ids = map[string]int{}
		}
		if len(e.ids) < maxSharedErrors {
			e.ids[key] = id
		}
	}
	return append(data, '\n'), nil
}

// dlqWriter writes the letters of one commit of a partition to a new
// dead-letter file, which becomes visible only at commit. The file is
// created on the first letter, so that commits without failures cost no
// file.
type dlqWriter struct {
	blobs *blobs.Bucket
	// key names the file of the letters since the last commit; the owner
	// sets it before the first of them.
	key  string
	w    *blobs.Writer
	buf  *bufio.Writer
	enc  letterEncoder
	file DeadLetterFile
	hash *xxhash.Digest
}

// append writes l to the file named key (created on the first letter).
func (d *dlqWriter) append(ctx context.Context, l *DeadLetter) error {
	if d.w == nil {
		w, err := d.blobs.NewWriter(ctx, d.key)
		if err != nil {
			return err
		}
		d.w, d.file, d.hash, d.enc = w, DeadLetterFile{Key: d.key}, xxhash.New(), letterEncoder{}
		d.buf = bufio.NewWriter(w)
	}
	data, err := d.enc.encode(l)
	if err != nil {
		return err
	}
	d.hash.Write(data)
	d.file.Size += int64(len(data))
	d.file.Letters++
	_, err = d.buf.Write(data)
	return err
}

// commit makes the letters appended since the last commit durable and
// returns their file, or nil if there were none; the next letter needs a
// new key.
func (d *dlqWriter) commit() (*DeadLetterFile, error) {
	d.key = ""
	if d.w == nil {
		return nil, nil
	}
	if err := d.buf.Flush(); err != nil {
		return nil, err
	}
	if err := d.w.Commit(); err != nil {
		return nil, err
	}
	f := d.file
	f.Checksum = d.hash.Sum64()
	d.w = nil
	return &f, nil
}

// abort drops the letters appended since the last commit.
func (d *dlqWriter) abort() {
	if d.w != nil {
		d.w.Abort()
		d.w = nil
	}
}

// readDLQFiles reads the letters of files, in order, checking each file
// against its recorded size and checksum; a file that fails is an error
// wrapping ErrDamaged.
func readDLQFiles(ctx context.Context, b *blobs.Bucket, files []DeadLetterFile) ([]DeadLetter, error) {
	var letters []DeadLetter
	for _, f := range files {
		data, err := b.ReadAll(ctx, f.Key)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %w: the checkpoint names it, with %d letters; it was removed outside mr", ErrDamaged, err, f.Letters)
		}
		if err != nil {
			return nil, fmt.Errorf("dead letters %s: %w", f.Key, err)
		}
		if int64(len(data)) != f.Size || xxhash.Sum64(data) != f.Checksum {
			return nil, fmt.Errorf("%w: dead letters %s hold %d bytes with checksum %016x; the checkpoint recorded %d bytes with %016x: it was changed outside mr",
				ErrDamaged, f.Key, len(data), xxhash.Sum64(data), f.Size, f.Checksum)
		}
		ls, err := parseDeadLetters(data)
		if err != nil {
			return nil, fmt.Errorf("%w: dead letters %s: %w", ErrDamaged, f.Key, err)
		}
		letters = append(letters, ls...)
	}
	return letters, nil
}

// parseDeadLetters parses a dead-letter file's contents, one letter per
// line (see letterLine), each with its error's text and stack filled in.
// A malformed or unterminated line is an error naming its line number, and
// so is one whose error number the file has not defined: committed files
// are whole.
func parseDeadLetters(data []byte) ([]DeadLetter, error) {
	var letters []DeadLetter
	var errs []letterLine // error number n is errs[n-1], the line that defined it
	for n := 1; len(data) > 0; n++ {
		text, rest, complete := bytes.Cut(data, []byte{'\n'})
		if !complete {
			return letters, fmt.Errorf("line %d is not terminated", n)
		}
		data = rest
		var line letterLine
		if err := json.Unmarshal(text, &line); err != nil {
			return letters, fmt.Errorf("line %d: %w", n, err)
		}
		switch id := line.ErrorID; {
		case id == len(errs)+1:
			errs = append(errs, line)
		case id < 1 || id > len(errs):
			return letters, fmt.Errorf("line %d: error %d is not defined (lines before it define errors 1 to %d)", n, id, len(errs))
		case line.Error != "" || line.Stack != "":
			return letters, fmt.Errorf("line %d: error %d is defined twice", n, id)
		}
		def := errs[line.ErrorID-1]
		letters = append(letters, DeadLetter{
			Job: line.Job, Run: line.Run, Partition: line.Partition, Cursor: line.Cursor, Tie: line.Tie, Row: line.Row,
			Error: def.Error, Stack: def.Stack, Attempts: line.Attempts, Time: line.Time,
		})
	}
	return letters, nil
}
