package mapreduce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/mrengine/mr/spill"
)

// Store keeps run state: plans, partition checkpoints and bucket done
// markers. DirStore keeps them in a local directory; a shared store (in
// PostgreSQL, for many workers) implements the same methods.
type Store interface {
	// LoadPlan returns the run's plan, or an error wrapping
	// fs.ErrNotExist when the run has none.
	LoadPlan(ctx context.Context, run string) (*Plan, error)
	// SavePlan writes a new plan, dropping the run's checkpoints and done
	// markers.
	SavePlan(ctx context.Context, p *Plan) error
	// LoadCheckpoint returns partition part's checkpoint, or nil if it
	// has none.
	LoadCheckpoint(ctx context.Context, run string, part int) (*Checkpoint, error)
	// SaveCheckpoint durably replaces a partition's checkpoint.
	SaveCheckpoint(ctx context.Context, run string, cp *Checkpoint) error
	// MarkBucketDone notes that a bucket was applied to the sink. The sink's
	// own commit record is the truth; this is for status reports.
	MarkBucketDone(ctx context.Context, run string, bucket int) error
	// BucketsDone lists the buckets marked done, in order.
	BucketsDone(ctx context.Context, run string) ([]int, error)
	// Remove deletes a run's state.
	Remove(ctx context.Context, run string) error
}

// DirStore keeps each run's state in Dir/<run id>/:
//
//	plan.json               the plan
//	checkpoints/p0000.json  one checkpoint per partition
//	done/b0000              one empty marker per applied bucket
//	shuffle/, dlq/          the run's shuffle files and dead letters
//
// Every file is replaced atomically: written to a temp file, synced,
// renamed over the old one, and the directory synced.
type DirStore struct {
	Dir string
}

var _ Store = DirStore{}

// RunDir returns the directory of a run.
func (s DirStore) RunDir(run string) string { return filepath.Join(s.Dir, run) }

// LoadPlan reads Dir/<run>/plan.json.
func (s DirStore) LoadPlan(_ context.Context, run string) (*Plan, error) {
	var p Plan
	if err := readJSON(filepath.Join(s.RunDir(run), "plan.json"), &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// SavePlan removes the run's plan, checkpoints and done markers, then
// writes the new plan.
func (s DirStore) SavePlan(_ context.Context, p *Plan) error {
	dir := s.RunDir(p.RunID)
	// The old plan goes first: a crash below must not leave it in force
	// without its checkpoints, to be resumed from scratch.
	if err := os.Remove(filepath.Join(dir, "plan.json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, sub := range []string{"checkpoints", "done"} {
		if err := os.RemoveAll(filepath.Join(dir, sub)); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return err
		}
	}
	return writeJSON(filepath.Join(dir, "plan.json"), p)
}

// LoadCheckpoint reads checkpoints/p<part>.json; nil if it is missing.
func (s DirStore) LoadCheckpoint(_ context.Context, run string, part int) (*Checkpoint, error) {
	var cp Checkpoint
	err := readJSON(s.checkpointPath(run, part), &cp)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &cp, nil
}

// SaveCheckpoint replaces checkpoints/p<part>.json atomically.
func (s DirStore) SaveCheckpoint(_ context.Context, run string, cp *Checkpoint) error {
	return writeJSON(s.checkpointPath(run, cp.Partition), cp)
}

func (s DirStore) checkpointPath(run string, part int) string {
	return filepath.Join(s.RunDir(run), "checkpoints", fmt.Sprintf("p%04d.json", part))
}

// MarkBucketDone writes the marker done/b<bucket>.
func (s DirStore) MarkBucketDone(_ context.Context, run string, bucket int) error {
	return writeFileAtomic(filepath.Join(s.RunDir(run), "done", fmt.Sprintf("b%04d", bucket)), nil)
}

// BucketsDone lists the done markers.
func (s DirStore) BucketsDone(_ context.Context, run string) ([]int, error) {
	entries, err := os.ReadDir(filepath.Join(s.RunDir(run), "done"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var done []int
	for _, e := range entries {
		if b, err := strconv.Atoi(strings.TrimPrefix(e.Name(), "b")); err == nil && strings.HasPrefix(e.Name(), "b") {
			done = append(done, b)
		}
	}
	slices.Sort(done)
	return done, nil
}

// Remove deletes the run's directory.
func (s DirStore) Remove(_ context.Context, run string) error {
	return os.RemoveAll(s.RunDir(run))
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s is damaged (%v): remove the run with --fresh", path, err)
	}
	return nil
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(data, '\n'))
}

// writeFileAtomic replaces path with data so that a crash leaves either the
// old or the new file, never a torn one.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // fails harmlessly once renamed
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	return spill.OS{}.SyncDir(dir)
}
