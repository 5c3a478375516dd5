package mapreduce

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/gofrs/flock"
)

// Store keeps run state: the run lock, plans, partition checkpoints,
// bucket done markers and replay manifests. It is the one seam between the
// engine and where that state lives: DirStore keeps it in a local
// directory for one process; a shared store (in PostgreSQL, for many
// workers) implements the same methods. Shuffle files and dead letters are
// bytes, not state: they live in blob storage (Config.Blobs) and count
// only once a checkpoint or manifest saved here names them.
type Store interface {
	// Lock takes the run for this process until unlock is called, so that
	// two processes never run one run at once; a run held by another
	// gives an error wrapping ErrRunInUse.
	Lock(ctx context.Context, run string) (unlock func() error, err error)
	// Runs lists the runs that have a plan, by id.
	Runs(ctx context.Context) ([]string, error)
	// LoadPlan returns the run's plan, or an error wrapping fs.ErrNotExist
	// when the run has none.
	LoadPlan(ctx context.Context, run string) (*Plan, error)
	// SavePlan writes a new plan, dropping the run's checkpoints, done
	// markers and replay manifest: nothing of an earlier plan counts.
	SavePlan(ctx context.Context, p *Plan) error
	// LoadCheckpoint returns partition part's checkpoint, or nil if it
	// has none.
	LoadCheckpoint(ctx context.Context, run string, part int) (*Checkpoint, error)
	// SaveCheckpoint durably replaces a partition's checkpoint: the map
	// side's commit point.
	SaveCheckpoint(ctx context.Context, run string, cp *Checkpoint) error
	// MarkBucketDone notes that a bucket was applied to the sink. The sink's
	// own commit record is the truth; this is for status reports.
	MarkBucketDone(ctx context.Context, run string, bucket int) error
	// BucketsDone lists the buckets marked done, in order.
	BucketsDone(ctx context.Context, run string) ([]int, error)
	// LoadReplay returns the run's replay manifest, or nil if it has none.
	LoadReplay(ctx context.Context, run string) (*ReplayManifest, error)
	// SaveReplay durably replaces the run's replay manifest: the commit
	// point of mr dlq replay.
	SaveReplay(ctx context.Context, run string, m *ReplayManifest) error
}

// ErrRunInUse is returned by Open for a run that another process has open.
var ErrRunInUse = errors.New("run in use")

// DirStore keeps each run's state in Dir/<run id>/:
//
//	lock, lock.owner        the run lock and the pid of its holder
//	plan.json               the plan
//	checkpoints/p0000.json  one checkpoint per partition
//	done/b0000              one empty marker per applied bucket
//	replay.json             the replay manifest
//
// Every file is replaced atomically: written to a temp file, synced,
// renamed over the old one, and the directory synced. With the default
// Config.Blobs the run's shuffle files and dead letters live next to these,
// in shuffle/, dlq/ and replay/.
type DirStore struct {
	Dir string
}

var _ Store = DirStore{}

func (s DirStore) runDir(run string) string { return filepath.Join(s.Dir, run) }

// Lock takes an flock on Dir/<run>/lock (creating the directory), which
// the kernel releases when the process dies, however it dies.
func (s DirStore) Lock(_ context.Context, run string) (func() error, error) {
	dir := s.runDir(run)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	lock := flock.New(filepath.Join(dir, "lock"), flock.SetPermissions(0o600))
	ok, err := lock.TryLock()
	if err != nil {
		return nil, fmt.Errorf("lock run %s: %w", run, err)
	}
	owner := filepath.Join(dir, "lock.owner")
	if !ok {
		holder, _ := os.ReadFile(owner)
		pid := cmp.Or(strings.TrimSpace(string(holder)), "unknown") // empty while the holder writes it
		return nil, fmt.Errorf("%w: %s is held by process %s; wait for it to finish, or stop it", ErrRunInUse, run, pid)
	}
	// The pid is only for the message above; failing to write it is harmless.
	writeFileAtomic(owner, []byte(strconv.Itoa(os.Getpid())+"\n"))
	return lock.Close, nil
}

// Runs lists the directories of Dir that hold a plan.
func (s DirStore) Runs(ctx context.Context) ([]string, error) {
	entries, err := os.ReadDir(s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(s.Dir, e.Name(), "plan.json")); e.IsDir() && err == nil {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

// LoadPlan reads Dir/<run>/plan.json.
func (s DirStore) LoadPlan(_ context.Context, run string) (*Plan, error) {
	var p Plan
	if err := readJSON(filepath.Join(s.runDir(run), "plan.json"), &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// SavePlan removes the run's plan, checkpoints, done markers and replay
// manifest, then writes the new plan.
func (s DirStore) SavePlan(_ context.Context, p *Plan) error {
	dir := s.runDir(p.RunID)
	// The old plan goes first: a crash below must not leave it in force
	// without its checkpoints, to be resumed from scratch.
	for _, name := range []string{"plan.json", "replay.json"} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	for _, sub := range []string{"checkpoints", "done"} {
		if err := os.RemoveAll(filepath.Join(dir, sub)); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
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
	return filepath.Join(s.runDir(run), "checkpoints", fmt.Sprintf("p%04d.json", part))
}

// MarkBucketDone writes the marker done/b<bucket>.
func (s DirStore) MarkBucketDone(_ context.Context, run string, bucket int) error {
	return writeFileAtomic(filepath.Join(s.runDir(run), "done", fmt.Sprintf("b%04d", bucket)), nil)
}

// BucketsDone lists the done markers.
func (s DirStore) BucketsDone(_ context.Context, run string) ([]int, error) {
	entries, err := os.ReadDir(filepath.Join(s.runDir(run), "done"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var done []int
	for _, e := range entries {
		if n, ok := strings.CutPrefix(e.Name(), "b"); ok {
			if b, err := strconv.Atoi(n); err == nil {
				done = append(done, b)
			}
		}
	}
	slices.Sort(done)
	return done, nil
}

// LoadReplay reads replay.json; nil if it is missing.
func (s DirStore) LoadReplay(_ context.Context, run string) (*ReplayManifest, error) {
	var m ReplayManifest
	err := readJSON(filepath.Join(s.runDir(run), "replay.json"), &m)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// SaveReplay replaces replay.json atomically.
func (s DirStore) SaveReplay(_ context.Context, run string, m *ReplayManifest) error {
	return writeJSON(filepath.Join(s.runDir(run), "replay.json"), m)
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
	return syncDir(dir)
}

// syncDir makes the entries of dir (a rename, a new name) durable. On
// Windows, where a directory cannot be opened for syncing, NTFS journals
// renames itself.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return err
	}
	return d.Close()
}
