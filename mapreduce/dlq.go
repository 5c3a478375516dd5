package mapreduce

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// DeadLetter is one row that failed Map on every attempt. Each partition
// appends them, one JSON object per line, to dlq/p<part>.jsonl in its run
// directory.
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

// dlqWriter appends dead letters to a partition's DLQ file. The file
// belongs to the partition's checkpoint: each commit syncs it and records
// its length, and a resumed task cuts it back to that length, so that the
// rows it re-reads fail into the file exactly once.
//
// The file is opened on the first letter, so that partitions without
// failures cost no file.
type dlqWriter struct {
	path string
	f    *os.File
	w    *bufio.Writer
	size int64
}

// newDLQ cuts the file at path back to size, the length its checkpoint
// recorded, dropping letters of an attempt that died before its commit, and
// returns a writer that appends after it.
func newDLQ(path string, size int64) (*dlqWriter, error) {
	var have int64
	switch fi, err := os.Stat(path); {
	case err == nil:
		have = fi.Size()
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	if have < size {
		return nil, fmt.Errorf("%s holds %d bytes, its checkpoint committed %d: it was changed outside mr; start over with --fresh", path, have, size)
	}
	if have > size {
		if err := os.Truncate(path, size); err != nil {
			return nil, err
		}
	}
	return &dlqWriter{path: path, size: size}, nil
}

func (d *dlqWriter) open() error {
	if err := os.MkdirAll(filepath.Dir(d.path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(d.path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Seek(d.size, io.SeekStart); err != nil {
		f.Close()
		return err
	}
	d.f, d.w = f, bufio.NewWriter(f)
	return nil
}

func (d *dlqWriter) append(l *DeadLetter) error {
	if d.f == nil {
		if err := d.open(); err != nil {
			return err
		}
	}
	data, err := json.Marshal(l)
	if err != nil {
		// A row value JSON cannot hold (NaN, say): keep the letter, say so.
		l.Row = map[string]any{"unencodable": fmt.Sprint(l.Row)}
		if data, err = json.Marshal(l); err != nil {
			return err
		}
	}
	n, err := d.w.Write(append(data, '\n'))
	d.size += int64(n)
	return err
}

// sync makes every appended letter durable and returns the file's length.
func (d *dlqWriter) sync() (int64, error) {
	if d.f == nil {
		return d.size, nil
	}
	if err := d.w.Flush(); err != nil {
		return 0, err
	}
	return d.size, d.f.Sync()
}

func (d *dlqWriter) close() error {
	if d.f == nil {
		return nil
	}
	return d.f.Close()
}

// ReadDeadLetterFile reads a partition's DLQ file; a missing file holds no
// letters.
func ReadDeadLetterFile(path string) ([]DeadLetter, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	letters, err := ReadDeadLetters(data)
	if err != nil {
		return letters, fmt.Errorf("%s: %w", path, err)
	}
	return letters, nil
}

// ReadDeadLetters parses a DLQ file's contents. A malformed line is an
// error naming its line number; a missing final newline (a letter being
// written when the process died) is ignored, as a resumed run rewrites it.
func ReadDeadLetters(data []byte) ([]DeadLetter, error) {
	var letters []DeadLetter
	for n := 1; len(data) > 0; n++ {
		line, rest, complete := bytes.Cut(data, []byte{'\n'})
		if !complete {
			break
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
