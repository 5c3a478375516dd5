package mapreduce

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"
)

// Config holds a run's settings. Every value means itself (MaxRetries 0
// is no retries, MaxFailureRate 0 alerts on any failed row), so start
// from DefaultConfig and change what you need; Validate rejects values out
// of range. Only the interfaces have a nil that means "the default".
type Config struct {
	// Workdir holds one folder of run state per run.
	Workdir string
	// Store keeps plans, checkpoints and the run lock. nil: a DirStore in
	// Workdir.
	Store Store
	// Blobs is the URL of the object storage that holds shuffle files and
	// dead letters (gocloud.dev/blob: file:///abs/dir, or a scheme whose
	// driver the binary links). Empty: Workdir.
	Blobs string
	// Shared says that many processes run the run at once, a task each
	// (see shared.go), over a Store and Blobs they all reach: Open takes
	// no lock on the run, and leaves the files that no checkpoint names,
	// since another process may be about to commit them (mr gc removes
	// those of attempts that died). Run is not for a shared run; MapTask,
	// ReduceTask and FinishTask are.
	Shared bool

	// Table and Cursor override the job's Input. Empty: the job's.
	Table  string
	Cursor string

	// Partitions is the number of cursor ranges (map tasks): several per
	// worker, so that a slow range does not leave the others idle. It
	// does not follow Workers, because it is part of the run's identity
	// and a resumed run may have other workers.
	Partitions int
	// Buckets is the number of hash buckets (reduce tasks and sink
	// transactions), for the same reasons. A map-only job has none.
	Buckets int
	// ChunkSize is the number of rows per keyset query, and per chunk of a
	// streamed range: commits fall between chunks.
	ChunkSize int
	// Workers is the number of tasks run at once.
	Workers int
	// Memory bounds the heap the engine's combine tables may use, shared by
	// the running tasks.
	Memory int64

	// MaxRetries is how often a failed row is retried before it goes to
	// the dead-letter queue.
	MaxRetries int
	// RetryDelay is the first retry's backoff; each retry doubles it, with
	// jitter.
	RetryDelay time.Duration
	// MaxFailureRate is the share of failed rows above which a finished
	// run reports ErrFailureRate, and above which a run stops its map
	// phase early once it has mapped a sample of rows (see Runner.Run).
	// 1 never stops a run.
	MaxFailureRate float64
	// CheckpointInterval is how often a map task flushes its combiner and
	// commits a checkpoint, at the next chunk boundary. It bounds the work
	// a crash loses. A map-only job (see Job) commits every chunk.
	CheckpointInterval time.Duration

	// Fresh discards the run state of an earlier run with the same identity
	// and starts over.
	Fresh bool
	// Incremental makes the run's plans take a safe high-water mark of
	// the source (see Marker), so that once the run finishes, Runner.Next
	// can plan a batch of only the rows added since and merge their groups
	// into the output table. The job must be Incremental, the source a
	// Marker and the sink a Merger; a map-only job (see Job) needs only
	// the Marker, since a batch upserts its rows as a full run does.
	Incremental bool
	// Lookback, with Incremental, makes every batch recompute the groups
	// of a window of time whole and replace them, so that rows that came
	// late or changed within it are counted exactly (see Lookback). The
	// source must be a Locator. It is not part of the run's identity: a
	// batch with a lookback ends where one without would, but for the
	// window's rows that changed.
	Lookback *Lookback

	// Pipeline, Stage and Stages say that the run is stage Stage (from 1)
	// of the Stages of the pipeline named Pipeline (see jobs.Pipeline);
	// zero for a run of a job alone. They are recorded in the plan, for
	// mr status, and are not part of the run's identity: a stage's run is
	// its job's run over the same ends, whoever starts it.
	Pipeline      string
	Stage, Stages int

	// Progress receives progress reports; nil for none.
	Progress Progress
	// Logger receives the run's log lines; nil for slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the default settings, each explained on its field.
func DefaultConfig() Config {
	return Config{
		Workdir:            ".mr",
		Partitions:         16,
		Buckets:            16,
		ChunkSize:          1000,
		Workers:            runtime.GOMAXPROCS(0),
		Memory:             512 << 20,
		MaxRetries:         3,
		RetryDelay:         50 * time.Millisecond,
		MaxFailureRate:     0.05,
		CheckpointInterval: 10 * time.Second,
	}
}

// Limits of Config values.
const (
	maxPartitions = 100_000
	maxBuckets    = 10_000
	minMemory     = 1 << 20
)

// Validate reports every setting out of its range, naming the flag.
func (c Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.Workdir != "", "--workdir must name a directory")
	check(c.Partitions >= 1 && c.Partitions <= maxPartitions, "--partitions must be between 1 and %d, got %d", maxPartitions, c.Partitions)
	check(c.Buckets >= 1 && c.Buckets <= maxBuckets, "--buckets must be between 1 and %d, got %d", maxBuckets, c.Buckets)
	check(c.ChunkSize >= 1, "--chunk-size must be at least 1, got %d", c.ChunkSize)
	check(c.Workers >= 1, "--workers must be at least 1, got %d", c.Workers)
	check(c.Memory >= minMemory, "--memory must be at least 1MiB, got %d bytes", c.Memory)
	check(c.MaxRetries >= 0, "--max-retries must be at least 0, got %d", c.MaxRetries)
	check(c.RetryDelay > 0, "--retry-delay must be positive, got %s", c.RetryDelay)
	check(c.MaxFailureRate >= 0 && c.MaxFailureRate <= 1, "--max-failure-rate must be between 0 and 1, got %g", c.MaxFailureRate)
	check(c.CheckpointInterval > 0, "--checkpoint-interval must be positive, got %s", c.CheckpointInterval)
	check(c.Lookback == nil || c.Incremental, "--lookback needs --incremental: only a batch has a window to recompute")
	check(c.Lookback == nil || c.Lookback.Within > 0, "--lookback must be positive, got %s", c.Lookback.within())
	return errors.Join(errs...)
}

// store returns the Store, DirStore in Workdir by default.
func (c Config) store() Store {
	if c.Store == nil {
		return DirStore{Dir: c.Workdir}
	}
	return c.Store
}

// logger returns the Logger, slog.Default() by default.
func (c Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.Default()
	}
	return c.Logger
}

// storeName names where cfg keeps run state, for messages.
func storeName(c Config) string {
	if c.Store == nil {
		return c.Workdir
	}
	return fmt.Sprintf("%T", c.Store)
}
