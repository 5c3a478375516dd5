package coordinator

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/mrengine/mr/internal/runtest"
)

// zombieWorker is a worker whose attempt is fenced: it waits to be let go,
// yields as worker.run does, and returns the fence's error.
type zombieWorker struct {
	river.WorkerDefaults[MapArgs]
	pool    *pgxpool.Pool
	started chan *rivertype.JobRow
	release chan struct{}
	done    chan struct{}
}

func (w *zombieWorker) Work(ctx context.Context, job *river.Job[MapArgs]) error {
	w.started <- job.JobRow
	<-w.release
	yield(ctx, w.pool, job.JobRow, time.Minute)
	close(w.done)
	return fmt.Errorf("%w: a zombie's", ErrFenced)
}

// TestWorker_ZombieYields runs a real River client whose attempt at a
// task is fenced while a second attempt (another worker's, after River
// rescued the task) runs it. River's completer records a Work's error on
// the job whatever attempt runs it, so the zombie must not return while
// the second attempt runs: the job stays running at attempt 2 until that
// attempt's final commit completes it, and the zombie's error changes
// nothing after.
func TestWorker_ZombieYields(t *testing.T) {
	t.Parallel()
	b := newTaskBundle(t, 2, 1, phaseMap)
	w := &zombieWorker{pool: b.pool, started: make(chan *rivertype.JobRow, 1),
		release: make(chan struct{}), done: make(chan struct{})}
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	client, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{
		Queues:  map[string]river.QueueConfig{queue: {MaxWorkers: 1}},
		Workers: workers,
		Logger:  runtest.DiscardLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer client.Stop(context.WithoutCancel(t.Context()))
	args := MapArgs{Run: testRun, Commit: testCommit, Partition: 0}
	if _, err := client.Insert(t.Context(), args, insertOpts()); err != nil {
		t.Fatal(err)
	}
	zombie := <-w.started
	// River rescued the task and another worker fetched it: attempt 2.
	if _, err := b.pool.Exec(b.ctx, "UPDATE river_job SET attempt = 2, attempted_at = now(), attempted_by = array_append(attempted_by, 'w2') WHERE id = $1", zombie.ID); err != nil {
		t.Fatal(err)
	}
	live := attempt(t, b, args, b.job(t, zombie.ID))
	close(w.release)
	time.Sleep(3 * yieldPoll)
	if j := b.job(t, zombie.ID); j.State != rivertype.JobStateRunning || j.Attempt != 2 {
		t.Fatalf("while attempt 2 runs, the zombie left the job %s at attempt %d; want running at 2", j.State, j.Attempt)
	}
	select {
	case <-w.done:
		t.Fatal("the zombie returned while another attempt ran its job")
	default:
	}
	if err := b.save(live, testCheckpoint(testCommit, 0, true)); err != nil {
		t.Fatalf("attempt 2's final commit: %v", err)
	}
	<-w.done
	// The completer records the zombie's error, or finds nothing to do.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if j := b.job(t, zombie.ID); j.State != rivertype.JobStateCompleted || j.Attempt != 2 {
			t.Fatalf("after the zombie returned the job is %s at attempt %d; want completed at 2, as attempt 2 left it", j.State, j.Attempt)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
