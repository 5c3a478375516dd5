package mapreduce_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/mrengine/mr/internal/blobs"
	"github.com/mrengine/mr/internal/runtest"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/partition"
)

// This file fills the disk under a run: the run stops with one message
// that names the work directory, the file and its size, and what to do,
// and once there is space again the same run resumes to the exact result
// without reading a committed row again.

// committedRanges returns the cursor ranges that run committed,
// [Range.Lo, Next) of each partition.
func committedRanges(t *testing.T, cfg mapreduce.Config, run string) []partition.Range {
	t.Helper()
	ri, err := mapreduce.Inspect(context.Background(), cfg, run)
	if err != nil {
		t.Fatal(err)
	}
	var committed []partition.Range
	for _, cp := range ri.Checkpoints {
		if cp != nil {
			committed = append(committed, partition.Range{Lo: cp.Range.Lo, Hi: cp.Next})
		}
	}
	return committed
}

// checkDiskFull checks the error of a run that filled the disk of dir.
func checkDiskFull(t *testing.T, err error, dir, pathPart string) {
	t.Helper()
	var full *mapreduce.DiskFullError
	if !errors.As(err, &full) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("a run on a full disk returned %v, want a *DiskFullError wrapping ENOSPC", err)
	}
	abs, _ := filepath.Abs(dir)
	var what string
	switch size := func(n int64) string { return humanize.IBytes(uint64(n)) }; {
	case full.Refused == 0:
		what = fmt.Sprintf("committing the %s of %s failed", size(full.Written), full.Path)
	case full.Written == 0:
		what = fmt.Sprintf("a write of %s to %s failed", size(full.Refused), full.Path)
	default:
		what = fmt.Sprintf("a write of %s to %s, after %s of it, failed", size(full.Refused), full.Path, size(full.Written))
	}
	want := "no space left on the disk of --workdir " + abs + " (" + what +
		"): free space or point --workdir at a larger disk, then run the same command again: the run resumes from its last checkpoints"
	if msg := err.Error(); msg != want || !strings.HasPrefix(full.Path, abs+string(filepath.Separator)) ||
		!strings.Contains(full.Path, pathPart) || full.Dir != abs || full.Flag != "--workdir" {
		t.Errorf("error = %q (%+v), want %q, naming a file under %s", err, full, want, pathPart)
	}
}

// TestRun_DiskFullInjected fills the disk at the first write of each kind
// of file a run writes, by a fault injected under the blob layer (the
// file system stays real): the disk stays full from there on, as a real
// one does, until the next run.
func TestRun_DiskFullInjected(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, key, op string
		after         int64 // matching operations that succeed first
	}{
		{"spill", "/shuffle/", "write", 6},
		{"spill-commit", "/shuffle/", "commit", 6},
		{"dead-letters", "/dlq/", "write", 3},
		{"checkpoint", "/checkpoints/", "write", 5},
		{"done-marker", "/done/", "write", 1}, // in the reduce phase, after the sink committed the bucket
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rows := randomRows(31, 4_000, 500, 0.01)
			cfg := runtest.Config(t)
			cfg.Partitions, cfg.Buckets, cfg.Workers, cfg.ChunkSize = 4, 4, 2, 200
			cfg.CheckpointInterval = time.Nanosecond // commit after every chunk
			sink := newMemSink()
			var hits atomic.Int64
			ctx := blobs.WithFault(context.Background(), func(op, key string, size int64) error {
				if op == tc.op && strings.Contains(key, tc.key) && hits.Add(1) > tc.after {
					return syscall.ENOSPC
				}
				return nil
			})
			first := &memSource{rows: rows, read: map[int64]int{}}
			s1, err := mapreduce.Run(ctx, sumJob(t), first, sink, cfg)
			checkDiskFull(t, err, cfg.Workdir, tc.key)
			committed := committedRanges(t, cfg, s1.RunID)

			second := &memSource{rows: rows, read: map[int64]int{}}
			s2, err := mapreduce.Run(context.Background(), sumJob(t), second, sink, cfg)
			if err != nil {
				t.Fatalf("the run after space was freed: %v", err)
			}
			checkTable(t, sink.table, truth(rows))
			if got, want := runtest.DeadLetterCursors(t, cfg, s2.RunID), badIDs(rows); !slices.Equal(got, want) {
				t.Errorf("DLQ holds %d letters, want %d", len(got), len(want))
			}
			for id := range second.read {
				for _, r := range committed {
					if r.Contains(id) {
						t.Fatalf("row %d was committed before the disk filled (%v) and read again", id, r)
					}
				}
			}
			if s2.Resumed != s1.Processed {
				t.Errorf("resumed %d rows, the first run committed %d", s2.Resumed, s1.Processed)
			}
		})
	}
}

// TestRun_DiskFullTmpfs runs on a 512 KiB tmpfs, which fills up (it needs
// root to mount, and skips without), then grows the tmpfs, as freeing
// space would, and runs again.
func TestRun_DiskFullTmpfs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=512k,mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	// Random group names do not compress: the shuffle files outgrow the
	// file system.
	rng := rand.New(rand.NewPCG(32, 1))
	rows := make([]memRow, 60_000)
	for i := range rows {
		kind := "ok"
		if i%1000 == 0 {
			kind = "poison"
		}
		rows[i] = memRow{id: int64(i + 1), group: fmt.Sprintf("%016x", rng.Uint64()), amount: int64(i % 100), kind: kind}
	}
	cfg := runtest.Config(t)
	cfg.Workdir = filepath.Join(dir, "work")
	cfg.Partitions, cfg.Buckets, cfg.Workers, cfg.ChunkSize = 4, 4, 2, 1000
	cfg.CheckpointInterval = time.Nanosecond
	sink := newMemSink()
	s1, err := mapreduce.Run(context.Background(), sumJob(t), &memSource{rows: rows, read: map[int64]int{}}, sink, cfg)
	checkDiskFull(t, err, cfg.Workdir, "/")
	committed := committedRanges(t, cfg, s1.RunID)

	if out, err := exec.Command("mount", "-o", "remount,size=64m", dir).CombinedOutput(); err != nil {
		t.Fatalf("grow the tmpfs: %v: %s", err, out)
	}
	second := &memSource{rows: rows, read: map[int64]int{}}
	s2, err := mapreduce.Run(context.Background(), sumJob(t), second, sink, cfg)
	if err != nil {
		t.Fatalf("the run after space was freed: %v", err)
	}
	checkTable(t, sink.table, truth(rows))
	if got, want := runtest.DeadLetterCursors(t, cfg, s2.RunID), badIDs(rows); !slices.Equal(got, want) {
		t.Errorf("DLQ holds %d letters, want %d", len(got), len(want))
	}
	for id := range second.read {
		for _, r := range committed {
			if r.Contains(id) {
				t.Fatalf("row %d was committed before the disk filled (%v) and read again", id, r)
			}
		}
	}
	if s1.Processed == 0 {
		t.Error("the first run committed nothing before the disk filled: the test does not show a resume")
	}
}

// TestDiskFullError_Error pins the message of each kind of failed write.
func TestDiskFullError_Error(t *testing.T) {
	t.Parallel()
	const todo = ": free space or point --workdir at a larger disk, then run the same command again: the run resumes from its last checkpoints"
	for _, tc := range []struct {
		err  mapreduce.DiskFullError
		want string
	}{
		{mapreduce.DiskFullError{Dir: "/w", Flag: "--workdir", Path: "/w/r/shuffle/b0004/p0001-000008-a3c708.arrow", Refused: 2150},
			"no space left on the disk of --workdir /w (a write of 2.1 KiB to /w/r/shuffle/b0004/p0001-000008-a3c708.arrow failed)" + todo},
		{mapreduce.DiskFullError{Dir: "/w", Flag: "--workdir", Path: "/w/r/dlq/p0002-000003-a3c708.jsonl", Written: 3 << 20, Refused: 4096},
			"no space left on the disk of --workdir /w (a write of 4.0 KiB to /w/r/dlq/p0002-000003-a3c708.jsonl, after 3.0 MiB of it, failed)" + todo},
		{mapreduce.DiskFullError{Dir: "/w", Flag: "--workdir", Path: "/w/r/checkpoints/p0002.json", Written: 1234},
			"no space left on the disk of --workdir /w (committing the 1.2 KiB of /w/r/checkpoints/p0002.json failed)" + todo},
		{mapreduce.DiskFullError{Dir: "/w", Flag: "--workdir"}, "no space left on the disk of --workdir /w" + todo},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() =\n%s\nwant\n%s", got, tc.want)
		}
	}
}
