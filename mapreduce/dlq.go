package mapreduce

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/mrengine/mr/internal/blobs"
)

// DeadLetter is one row that failed Map on every attempt.
type DeadLetter struct {
	Job       string         `json:"job"`
	Run       string         `json:"run"`
	Partition int            `json:"partition"`
	Cursor    int64          `json:"cursor"`
	Row       map[string]any `json:"row"`
	Error     string         `json:"error"`
	Stack     string         `json:"stack,omitempty"` // where Map panicked, if it did
	Attempts  int            `json:"attempts"`
	Time      time.Time      `json:"time"`
}

// DeadLetterFile is a committed dead-letter file: the letters of one commit of
// one partition, one JSON object per line, in blob storage at Key (see
// dlqKey). A partition's dead-letter queue is the sequence of files its
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
		d.w, d.file, d.hash = w, DeadLetterFile{Key: d.key}, xxhash.New()
		d.buf = bufio.NewWriter(w)
	}
	data, err := json.Marshal(l)
	if err != nil {
		// A row value JSON cannot hold (NaN, say): keep the letter, say so.
		l.Row = map[string]any{"unencodable": fmt.Sprint(l.Row)}
		if data, err = json.Marshal(l); err != nil {
			return err
		}
	}
	data = append(data, '\n')
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
// line. A malformed or unterminated line is an error naming its line
// number: committed files are whole.
func parseDeadLetters(data []byte) ([]DeadLetter, error) {
	var letters []DeadLetter
	for n := 1; len(data) > 0; n++ {
		line, rest, complete := bytes.Cut(data, []byte{'\n'})
		if !complete {
			return letters, fmt.Errorf("line %d is not terminated", n)
		}
		data = rest
		var l DeadLetter
		if err := json.Unmarshal(line, &l); err != nil {
			return letters, fmt.Errorf("line %d: %w", n, err)
		}
		letters = append(letters, l)
	}
	return letters, nil
}
