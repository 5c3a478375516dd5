package mapreduce_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/mrengine/mr/internal/runtest"
	"github.com/mrengine/mr/mapreduce"
)

// statsAtStart is a Progress that takes the Runner's Stats as each phase
// starts, on the goroutine that runs the phase.
type statsAtStart struct {
	runner **mapreduce.Runner // set once Open returns, before Run
	mu     sync.Mutex
	at     map[string]mapreduce.Stats
}

func (p *statsAtStart) Start(phase string, _, _ int64) {
	s := (*p.runner).Stats()
	p.mu.Lock()
	p.at[phase] = s
	p.mu.Unlock()
}
func (p *statsAtStart) Add(string, int64) {}
func (p *statsAtStart) Finish(string)     {}

// runWatched opens a run of sumJob over src and runs it while another
// goroutine reads its Stats without pause, so that -race checks them. It
// returns the Stats before Run, at the start of each phase and after Run.
func runWatched(ctx context.Context, t *testing.T, src mapreduce.Source, sink mapreduce.Sink, cfg mapreduce.Config) (before, after mapreduce.Stats, at map[string]mapreduce.Stats, s mapreduce.Summary, err error) {
	t.Helper()
	var runner *mapreduce.Runner
	prog := &statsAtStart{runner: &runner, at: map[string]mapreduce.Stats{}}
	cfg.Progress = prog
	runner, err = mapreduce.Open(ctx, sumJob(t), src, sink, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer runner.Close()
	before = runner.Stats()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				if st := runner.Stats(); st.Processed < st.Failed || st.PartitionsDone > st.Partitions || st.BucketsDone > st.Buckets {
					t.Errorf("Stats while running = %+v: a part exceeds its whole", st)
					return
				}
				time.Sleep(50 * time.Microsecond)
			}
		}
	})
	s, err = runner.Run(ctx)
	close(stop)
	wg.Wait()
	return before, runner.Stats(), prog.at, s, err
}

func TestRunner_Stats(t *testing.T) {
	t.Parallel()
	rows := randomRows(3, 8_000, 300, 0.01)
	var flaky, panics int64
	for _, r := range rows {
		switch r.kind {
		case "flaky":
			flaky++
		case "panic":
			panics++
		}
	}
	cfg := runtest.Config(t)
	cfg.Partitions, cfg.Buckets, cfg.Workers, cfg.ChunkSize = 5, 4, 3, 100
	cfg.MaxFailureRate = 1
	before, after, at, s, err := runWatched(context.Background(), t, &memSource{rows: rows, read: map[int64]int{}}, newMemSink(), cfg)
	if err != nil {
		t.Fatal(err)
	}

	if before.Phase != mapreduce.PhasePlanned || before.Read != 0 || before.PartitionsDone != 0 || before.RunID != s.RunID || before.Job != "sum_test" {
		t.Errorf("Stats before Run = %+v, want phase planned, nothing done, run %s of sum_test", before, s.RunID)
	}
	if m := at[mapreduce.PhaseMap]; m.Phase != mapreduce.PhaseMap || m.Read != 0 || m.PartitionsDone != 0 {
		t.Errorf("Stats as the map phase starts = %+v, want phase map, nothing done", m)
	}
	if r := at[mapreduce.PhaseReduce]; r.Phase != mapreduce.PhaseReduce || r.PartitionsDone != cfg.Partitions || r.BucketsDone != 0 || r.Read != int64(len(rows)) {
		t.Errorf("Stats as the reduce phase starts = %+v, want phase reduce, every partition and row done, no bucket", r)
	}

	// At the end Stats says what the Summary says.
	want := mapreduce.Stats{
		Job: s.Job, RunID: s.RunID, Phase: mapreduce.PhaseDone,
		Planned: int64(len(rows)), Read: s.Read, Resumed: s.Resumed, Processed: s.Processed,
		Failed: s.Failed, Chunks: s.Chunks, BytesSpilled: s.BytesSpilled, Groups: s.Groups,
		Partitions: s.Partitions, PartitionsDone: s.Partitions, PartitionsResumed: s.PartitionsResumed,
		Buckets: s.Buckets, BucketsDone: s.Buckets, BucketsResumed: s.BucketsResumed,
		// A flaky row fails once, a panicking one every attempt, a
		// poisoned one permanently: no retry.
		RowRetries: flaky + panics*int64(cfg.MaxRetries),
	}
	if after != want {
		t.Errorf("Stats after Run =\n  %+v\nwant\n  %+v", after, want)
	}
	if s.Read != int64(len(rows)) || s.Failed == 0 || s.Groups == 0 || s.BytesSpilled == 0 {
		t.Errorf("summary %+v: the test needs rows read, failed, spilled and groups written", s)
	}
}

// TestRunner_StatsResumed resumes a cancelled run: the work of the first
// attempt is resumed work in the second's Stats.
func TestRunner_StatsResumed(t *testing.T) {
	t.Parallel()
	rows := randomRows(4, 20_000, 400, 0.005)
	cfg := runtest.Config(t)
	cfg.Partitions, cfg.Buckets, cfg.Workers, cfg.ChunkSize = 6, 4, 3, 200
	cfg.CheckpointInterval = time.Nanosecond // commit after every chunk
	cfg.MaxFailureRate = 1
	sink := newMemSink()

	ctx, cancel := context.WithCancel(context.Background())
	first := &memSource{rows: rows, read: map[int64]int{}, afterChunk: func(n int64) {
		if n == 40 {
			cancel()
		}
	}}
	_, stopped, _, s1, err := runWatched(ctx, t, first, sink, cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run returned %v", err)
	}
	if stopped.Phase != mapreduce.PhaseDone || stopped.Processed != s1.Processed || stopped.Failed != s1.Failed {
		t.Errorf("Stats after the cancelled Run = %+v, want phase done and the counts of its summary %+v", stopped, s1)
	}

	_, after, at, s2, err := runWatched(context.Background(), t, &memSource{rows: rows, read: map[int64]int{}}, sink, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := at[mapreduce.PhaseMap]
	if m.Resumed != s1.Processed || m.FailedResumed != s1.Failed || m.BytesSpilledResumed != s1.BytesSpilled || m.Processed != s1.Processed || m.Read != 0 {
		t.Errorf("Stats as the resumed map phase starts = %+v, want the first attempt's %d rows, %d failed, %d bytes as resumed",
			m, s1.Processed, s1.Failed, s1.BytesSpilled)
	}
	if m.PartitionsResumed == 0 || m.PartitionsDone > m.PartitionsResumed {
		t.Errorf("Stats as the resumed map phase starts = %+v, want partitions resumed, at most those done", m)
	}
	if after.Read+after.Resumed != after.Processed || after.Processed != s2.Processed || after.Failed != s2.Failed ||
		after.FailedResumed != s1.Failed || after.BytesSpilled != s2.BytesSpilled || after.PartitionsDone != cfg.Partitions || after.BucketsDone != cfg.Buckets {
		t.Errorf("Stats after the resumed Run = %+v, want read + resumed = processed and the counts of its summary %+v", after, s2)
	}
}
