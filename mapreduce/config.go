package mapreduce

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"
)

// Config holds a run's settings. The zero value of every field means its
// default; Run fills them in with WithDefaults and checks them with
// Validate, so the command line only has to fill the struct.
type Config struct {
	// Workdir holds one folder of run state per run. Default "./.mr".
	Workdir string
	// Store keeps plans and checkpoints. Default: a DirStore in Workdir.
	Store Store

	// Table and Cursor override the job's Input. Empty: the job's.
	Table  string
	Cursor string

	// Partitions is the number of cursor ranges (map tasks). Default 16,
	// several per worker so that a slow range does not leave the others
	// idle; it does not follow Workers, because it is part of the run's
	// identity and a resumed run may have other workers.
	Partitions int
	// Buckets is the number of hash buckets (reduce tasks and sink
	// transactions). Default 16, for the same reasons.
	Buckets int
	// ChunkSize is the number of rows per keyset query. Default 1000.
	ChunkSize int
	// Workers is the number of tasks run at once. Default GOMAXPROCS.
	Workers int
	// Memory bounds the heap the engine's combine tables may use, shared by
	// the running tasks. Default 512 MiB.
	Memory int64

	// MaxRetries is how often a failed row is retried before it goes to
	// the dead-letter queue. Default 3; negative means none.
	MaxRetries int
	// RetryDelay is the first retry's backoff; each retry doubles it, with
	// jitter. Default 50ms.
	RetryDelay time.Duration
	// MaxFailureRate is the share of failed rows above which a finished
	// run reports ErrFailureRate. Default 0.05; negative means that any
	// failed row is an alert.
	MaxFailureRate float64
	// CheckpointInterval is how often a map task flushes its combine table
	// and commits a checkpoint, at the next chunk boundary. It bounds the
	// work a crash loses. Default 10s.
	CheckpointInterval time.Duration

	// Fresh discards the run state of an earlier run with the same identity
	// and starts over.
	Fresh bool

	// Progress receives progress reports; nil for none.
	Progress Progress
	// Logger receives the run's log lines. Default: slog.Default().
	Logger *slog.Logger
}

// Defaults for Config; each is explained on its field.
const (
	DefaultWorkdir            = ".mr"
	DefaultChunkSize          = 1000
	DefaultMemory             = 512 << 20
	DefaultMaxRetries         = 3
	DefaultRetryDelay         = 50 * time.Millisecond
	DefaultMaxFailureRate     = 0.05
	DefaultCheckpointInterval = 10 * time.Second
	DefaultPartitions         = 16
	DefaultBuckets            = 16
)

// WithDefaults returns c with every unset field given its default.
func (c Config) WithDefaults() Config {
	if c.Workdir == "" {
		c.Workdir = DefaultWorkdir
	}
	if c.Store == nil {
		c.Store = DirStore{Dir: c.Workdir}
	}
	if c.Workers == 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
	if c.Buckets == 0 {
		c.Buckets = DefaultBuckets
	}
	if c.ChunkSize == 0 {
		c.ChunkSize = DefaultChunkSize
	}
	if c.Memory == 0 {
		c.Memory = DefaultMemory
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	} else if c.MaxRetries < 0 {
		c.MaxRetries = 0
	}
	if c.RetryDelay == 0 {
		c.RetryDelay = DefaultRetryDelay
	}
	if c.MaxFailureRate == 0 {
		c.MaxFailureRate = DefaultMaxFailureRate
	} else if c.MaxFailureRate < 0 {
		c.MaxFailureRate = 0
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = DefaultCheckpointInterval
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
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
	check(c.Partitions >= 1 && c.Partitions <= maxPartitions, "--partitions must be between 1 and %d, got %d", maxPartitions, c.Partitions)
	check(c.Buckets >= 1 && c.Buckets <= maxBuckets, "--buckets must be between 1 and %d, got %d", maxBuckets, c.Buckets)
	check(c.ChunkSize >= 1, "--chunk-size must be at least 1, got %d", c.ChunkSize)
	check(c.Workers >= 1, "--workers must be at least 1, got %d", c.Workers)
	check(c.Memory >= minMemory, "--memory must be at least 1MiB, got %d bytes", c.Memory)
	check(c.MaxFailureRate >= 0 && c.MaxFailureRate <= 1, "--max-failure-rate must be in [0, 1], got %g", c.MaxFailureRate)
	check(c.RetryDelay > 0, "retry delay must be positive, got %s", c.RetryDelay)
	check(c.CheckpointInterval > 0, "checkpoint interval must be positive, got %s", c.CheckpointInterval)
	return errors.Join(errs...)
}
