package mapreduce

import (
	"bytes"
	"cmp"
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

	"github.com/cespare/xxhash/v2"
	"github.com/gofrs/flock"

	"github.com/mrengine/mr/internal/blobs"
)

// Store keeps run state: the run lock, plans, partition checkpoints,
// bucket done markers and replay manifests. It is the one seam between the
// engine and where that state lives: DirStore keeps it in a local
// directory for one process; a shared store (in PostgreSQL, for many
// workers) implements the same methods. Shuffle files and dead letters are
// bytes, not state: they live in blob storage (Config.Blobs) and count
// only once a checkpoint or manifest saved here names them.
//
// The plan is the root of a run's state: every checkpoint, done marker
// and replay manifest names the Commit of the plan it belongs to, and one
// that names another Commit does not count. So saving a new plan (a
// --fresh run) voids the old state at once, whatever a crash leaves of it.
//
// State changed or cut outside mr must be found on load, never misread:
// a Load method returns an error wrapping ErrDamaged for a record that
// fails its checksum, and the engine heals it (see Runner.Run).
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
	// SavePlan durably replaces the run's plan; the state of other
	// Commits stops counting.
	SavePlan(ctx context.Context, p *Plan) error
	// LoadCheckpoint returns partition part's checkpoint, or nil if it
	// has none.
	LoadCheckpoint(ctx context.Context, run string, part int) (*Checkpoint, error)
	// SaveCheckpoint durably replaces a partition's checkpoint: the map
	// side's commit point.
	SaveCheckpoint(ctx context.Context, run string, cp *Checkpoint) error
	// MarkBucketDone notes that a bucket was applied to the sink under the
	// plan with Commit commit. The sink's own commit record is the truth;
	// this is for status reports.
	MarkBucketDone(ctx context.Context, run, commit string, bucket int) error
	// BucketsDone lists the buckets marked done under commit, in order.
	BucketsDone(ctx context.Context, run, commit string) ([]int, error)
	// LoadReplay returns the run's replay manifest, or nil if it has none.
	LoadReplay(ctx context.Context, run string) (*ReplayManifest, error)
	// SaveReplay durably replaces the run's replay manifest: the commit
	// point of mr dlq replay.
	SaveReplay(ctx context.Context, run string, m *ReplayManifest) error
}

// A CheckpointsLoader is a Store that loads all of a run's checkpoints at
// once, where that is cheaper than one LoadCheckpoint each: one query of
// a database instead of one per partition, for every task of a run on
// workers and every mr status.
type CheckpointsLoader interface {
	// LoadCheckpoints returns, for partitions 0 to n-1 of run, what
	// LoadCheckpoint would: cps[part] and errs[part]. err is for a load
	// that failed as a whole.
	LoadCheckpoints(ctx context.Context, run string, n int) (cps []*Checkpoint, errs []error, err error)
}

// ErrRunInUse is returned by Open for a run that another process has open.
var ErrRunInUse = errors.New("run in use")

// DirStore keeps each run's state in Dir/<run id>/:
//
//	lock, lock.owner        the run lock and the pid of its holder
//	plan.json               the plan
//	checkpoints/p0000.json  one checkpoint per partition
//	done/b0000              one marker per applied bucket, holding the plan's Commit
//	replay.json             the replay manifest
//
// Each of these JSON files ends in a seal line (see seal), checked on load.
//
// Every file is written through blob storage in Dir (internal/blobs), so
// it is replaced atomically and durably: temp file, fsync, rename, fsync
// of the directory. With the default Config.Blobs the run's shuffle and
// dead-letter files live next to these, in shuffle/, replay/, reduce/ and
// dlq/.
type DirStore struct {
	Dir string
}

var _ Store = DirStore{}

// Lock takes an flock on Dir/<run>/lock (creating the directory), which
// the kernel releases when the process dies, however it dies.
func (s DirStore) Lock(ctx context.Context, run string) (func() error, error) {
	dir := filepath.Join(s.Dir, run)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	lock := flock.New(filepath.Join(dir, "lock"), flock.SetPermissions(0o600))
	ok, err := lock.TryLock()
	if err != nil {
		return nil, fmt.Errorf("lock run %s: %w", run, err)
	}
	owner := run + "/lock.owner"
	if !ok {
		holder, _ := os.ReadFile(s.path(owner))
		pid := cmp.Or(strings.TrimSpace(string(holder)), "unknown") // empty while the holder writes it
		return nil, fmt.Errorf("%w: %s is held by process %s; wait for it to finish, or stop it", ErrRunInUse, run, pid)
	}
	// The pid is only for the message above; failing to write it is harmless.
	s.write(ctx, owner, []byte(strconv.Itoa(os.Getpid())+"\n"))
	// The temp files of writes that a crash cut short: no one else writes
	// while we hold the lock.
	for _, pattern := range []string{"*.tmp", "checkpoints/*.tmp", "done/*.tmp"} {
		tmps, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, tmp := range tmps {
			os.Remove(tmp)
		}
	}
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
		if _, err := os.Stat(s.path(e.Name() + "/plan.json")); e.IsDir() && err == nil {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

// LoadPlan reads Dir/<run>/plan.json. A plan written before state files
// were sealed (format 2 and older) has no seal and is returned as it is,
// for Plan.check to refuse by its format.
func (s DirStore) LoadPlan(_ context.Context, run string) (*Plan, error) {
	var p Plan
	err := s.readJSON(run+"/plan.json", &p)
	if errors.Is(err, errNoSeal) && p.Format != 0 && p.Format < firstSealedFormat {
		return &p, nil
	}
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// SavePlan replaces plan.json, then removes the state that does not belong
// to it: checkpoints, done markers and a replay manifest of another Commit
// (see Store), or that fail their seal. A plan rebuilt under the same
// Commit (see Runner.rebuildPlan) keeps the state that is sound.
func (s DirStore) SavePlan(ctx context.Context, p *Plan) error {
	if err := s.writeJSON(ctx, p.RunID+"/plan.json", p); err != nil {
		return err
	}
	dir := filepath.Join(s.Dir, p.RunID)
	var files []string
	for _, pattern := range []string{"checkpoints/*", "done/*", "replay.json"} {
		found, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			return err
		}
		files = append(files, found...)
	}
	var errs []error
	for _, f := range files {
		rel, _ := filepath.Rel(s.Dir, f)
		var owner struct {
			Commit string `json:"commit"`
		}
		if err := s.readJSON(filepath.ToSlash(rel), &owner); err == nil && owner.Commit == p.Commit {
			continue
		}
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// LoadCheckpoint reads checkpoints/p<part>.json; nil if it is missing, an
// error wrapping ErrDamaged if it fails its seal.
func (s DirStore) LoadCheckpoint(_ context.Context, run string, part int) (*Checkpoint, error) {
	var cp Checkpoint
	err := s.readJSON(checkpointKey(run, part), &cp)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &cp, nil
}

// SaveCheckpoint replaces checkpoints/p<part>.json atomically.
func (s DirStore) SaveCheckpoint(ctx context.Context, run string, cp *Checkpoint) error {
	return s.writeJSON(ctx, checkpointKey(run, cp.Partition), cp)
}

func checkpointKey(run string, part int) string {
	return fmt.Sprintf("%s/checkpoints/p%04d.json", run, part)
}

// doneMarker is the contents of done/b<bucket>.
type doneMarker struct {
	Commit string `json:"commit"`
	Bucket int    `json:"bucket"`
}

// MarkBucketDone writes the marker done/b<bucket>, which holds commit.
func (s DirStore) MarkBucketDone(ctx context.Context, run, commit string, bucket int) error {
	return s.writeJSON(ctx, doneKey(run, bucket), doneMarker{Commit: commit, Bucket: bucket})
}

func doneKey(run string, bucket int) string { return fmt.Sprintf("%s/done/b%04d", run, bucket) }

// BucketsDone lists the done markers that hold commit. A marker that fails
// its seal, or names another bucket, does not count: the markers are for
// reports, the sink's own record is the truth, and the next reduce phase
// writes the marker again from it.
func (s DirStore) BucketsDone(_ context.Context, run, commit string) ([]int, error) {
	dir := filepath.Join(s.Dir, run, "done")
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var done []int
	for _, e := range entries {
		n, ok := strings.CutPrefix(e.Name(), "b")
		b, err := strconv.Atoi(n)
		if !ok || err != nil { // a temp file of a marker being written
			continue
		}
		var m doneMarker
		if err := s.readJSON(doneKey(run, b), &m); err == nil && m.Commit == commit && m.Bucket == b {
			done = append(done, b)
		}
	}
	slices.Sort(done)
	return done, nil
}

// LoadReplay reads replay.json; nil if it is missing, an error wrapping
// ErrDamaged if it fails its seal.
func (s DirStore) LoadReplay(_ context.Context, run string) (*ReplayManifest, error) {
	var m ReplayManifest
	err := s.readJSON(run+"/replay.json", &m)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// SaveReplay replaces replay.json atomically.
func (s DirStore) SaveReplay(ctx context.Context, run string, m *ReplayManifest) error {
	return s.writeJSON(ctx, run+"/replay.json", m)
}

// path is the file of key, a slash-separated name under Dir.
func (s DirStore) path(key string) string { return filepath.Join(s.Dir, filepath.FromSlash(key)) }

// readJSON reads the sealed file of key into v. A file whose seal does not
// match its contents gives an error wrapping ErrDamaged, with v filled as
// far as the contents parse (to tell an older format's file, see
// LoadPlan); a missing one, fs.ErrNotExist.
func (s DirStore) readJSON(key string, v any) error {
	data, err := os.ReadFile(s.path(key))
	if err != nil {
		return err
	}
	body, err := unseal(data)
	if err != nil {
		json.Unmarshal(body, v)
		return fmt.Errorf("%w: %s %w", ErrDamaged, s.path(key), err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: %s does not parse (%v)", ErrDamaged, s.path(key), err)
	}
	return nil
}

func (s DirStore) writeJSON(ctx context.Context, key string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return s.write(ctx, key, seal(append(data, '\n')))
}

// A state file is its JSON document followed by one seal line, itself a
// JSON object, holding the XXH64 of every byte before it:
//
//	{
//	  "commit": "…",
//	  …
//	}
//	{"xxh64":"0f1e2d3c4b5a6978"}
//
// The document stays readable as it is (by people, by mr inspect, and by
// jq, which reads the two objects as a stream), while any change to it, a
// lost seal or a cut file is found on load: a flipped digit in a cursor or
// a bucket number parses as well as the true one, so parsing alone cannot
// tell them apart. The seal covers bytes, not a re-encoding, so it does
// not depend on how JSON is printed.
type sealLine struct {
	XXH64 string `json:"xxh64"`
}

// errNoSeal reports a state file without a seal line: cut short, or
// written by an mr from before seals (see Plan.Format).
var errNoSeal = errors.New("has no checksum line")

// seal appends the seal line of body, which ends in a newline.
func seal(body []byte) []byte {
	line, _ := json.Marshal(sealLine{XXH64: fmt.Sprintf("%016x", xxhash.Sum64(body))})
	return append(append(body, line...), '\n')
}

// unseal returns the document of a sealed file, checked against its seal.
// On a mismatch it also returns what it took for the document, for
// diagnosis.
func unseal(data []byte) ([]byte, error) {
	trimmed := bytes.TrimSuffix(data, []byte("\n"))
	i := bytes.LastIndexByte(trimmed, '\n')
	if i < 0 {
		return data, errNoSeal
	}
	body := trimmed[:i+1]
	var sl sealLine
	if err := json.Unmarshal(trimmed[i+1:], &sl); err != nil || sl.XXH64 == "" {
		return data, errNoSeal
	}
	if sum := fmt.Sprintf("%016x", xxhash.Sum64(body)); sum != sl.XXH64 {
		return body, fmt.Errorf("fails its checksum (its contents hash to %s, its checksum line says %s)", sum, sl.XXH64)
	}
	return body, nil
}

// write replaces the file of key with data, atomically and durably.
func (s DirStore) write(ctx context.Context, key string, data []byte) (err error) {
	b, err := blobs.OpenDir(s.Dir)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, b.Close()) }()
	w, err := b.NewWriter(ctx, key)
	if err != nil {
		return err
	}
	defer w.Abort() // after a Commit, nothing
	if _, err := w.Write(data); err != nil {
		return err
	}
	return w.Commit()
}
