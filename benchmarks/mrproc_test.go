package benchmarks

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mrengine/mr/internal/pgtest"
)

// The benchmarks of workers (workers_test.go) run mr as a user does, in
// processes of its own: the one-process run, the submission and every
// worker are the same mr binary, built once per benchmark with go build
// (the Go build cache makes every build after the first a link). mrcli's
// tests re-exec their own test binary instead; a benchmarks binary is not
// mr, so it cannot.

// mrBinary builds cmd/mr into a temporary directory of b and returns its
// path. It skips b when no go command is on the PATH.
func mrBinary(b *testing.B) string {
	b.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		b.Skipf("building mr needs the go command: %v", err)
	}
	bin := filepath.Join(b.TempDir(), "mr")
	cmd := exec.Command(gobin, "build", "-o", bin, "github.com/mrengine/mr/cmd/mr")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build mr: %v\n%s", err, out)
	}
	return bin
}

// runBin runs mr with args to its end and returns its stdout and how long
// it took, process start and exit included; an exit other than 0 fails b.
func runBin(b *testing.B, bin string, args ...string) (string, time.Duration) {
	b.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		b.Fatalf("mr %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String(), d
}

// A coordinatorDB is a fresh schema migrated as a coordinator (mr
// migrate), in the same cluster as the events table, dropped when b
// ends. Its schema is also the workers' sink, so that a bucket commits
// with its task's end in one transaction (see coordinator's package doc),
// as in a deployment whose coordinator is the output database.
type coordinatorDB struct {
	dsn  string
	conn *pgx.Conn
}

func newCoordinatorDB(b *testing.B, bin string) *coordinatorDB {
	b.Helper()
	dsn := pgtest.DSN(b)
	runBin(b, bin, "migrate", "--coordinator", dsn)
	return &coordinatorDB{dsn: dsn, conn: connect(b, dsn)}
}

// phase returns the phase of the coordinator's only run (mr_runs), or ""
// before it is submitted.
func (c *coordinatorDB) phase(b *testing.B) string {
	b.Helper()
	var phase string
	err := c.conn.QueryRow(context.Background(), "SELECT phase FROM mr_runs").Scan(&phase)
	if err != nil && err != pgx.ErrNoRows {
		b.Fatal(err)
	}
	return phase
}

// phasePoll is how often waitPhase looks: short next to the runs timed,
// and a trivial load (one index lookup) on the coordinator.
const phasePoll = 10 * time.Millisecond

// waitPhase waits until the run's phase is none of the phases in
// "from", or until the workers all exit, and returns the phase it found.
func (c *coordinatorDB) waitPhase(b *testing.B, ws *workerGroup, from ...string) string {
	b.Helper()
	for {
		p := c.phase(b)
		if !contains(from, p) {
			return p
		}
		if ws.allExited() {
			b.Fatalf("every worker exited while the run was in phase %q:\n%s", p, ws.logs())
		}
		time.Sleep(phasePoll)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// workerGroup is a set of mr worker processes on one coordinator.
type workerGroup struct {
	b     *testing.B
	procs []*workerProcess
}

type workerProcess struct {
	cmd  *exec.Cmd
	out  bytes.Buffer // written by the process only until done is closed
	done chan struct{}
	err  error
}

// startWorkers starts n workers (mr worker --coordinator dsn args…) and
// waits until each has registered in mr_workers, so that what is timed
// after is the run, not their start. b's cleanup kills any still running.
func startWorkers(b *testing.B, bin string, coord *coordinatorDB, n int, args ...string) *workerGroup {
	b.Helper()
	ws := &workerGroup{b: b}
	for range n {
		p := &workerProcess{done: make(chan struct{})}
		p.cmd = exec.Command(bin, append([]string{"worker", "--coordinator", coord.dsn}, args...)...)
		p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
		if err := p.cmd.Start(); err != nil {
			b.Fatal(err)
		}
		go func() { p.err = p.cmd.Wait(); close(p.done) }()
		ws.procs = append(ws.procs, p)
		b.Cleanup(func() {
			p.cmd.Process.Kill()
			<-p.done
		})
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var seen int
		err := coord.conn.QueryRow(context.Background(), "SELECT count(*) FROM mr_workers WHERE stopped_at IS NULL").Scan(&seen)
		if err != nil {
			b.Fatal(err)
		}
		if seen >= n {
			return ws
		}
		if ws.allExited() || time.Now().After(deadline) {
			b.Fatalf("%d of %d workers registered:\n%s", seen, n, ws.logs())
		}
		time.Sleep(phasePoll)
	}
}

// stop sends the workers SIGTERM, which lets running tasks commit, and
// fails b unless each exits cleanly.
func (ws *workerGroup) stop() {
	ws.b.Helper()
	for _, p := range ws.procs {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range ws.procs {
		<-p.done
		if p.err != nil {
			ws.b.Errorf("worker %d: %v after SIGTERM:\n%s", p.cmd.Process.Pid, p.err, &p.out)
		}
	}
}

// cpu returns the CPU time the running workers have used so far.
func (ws *workerGroup) cpu() time.Duration {
	var used time.Duration
	for _, p := range ws.procs {
		if st, ok := procStat(p.cmd.Process.Pid); ok {
			used += st.cpu
		}
	}
	return used
}

func (ws *workerGroup) allExited() bool {
	for _, p := range ws.procs {
		select {
		case <-p.done:
		default:
			return false
		}
	}
	return true
}

// logs returns the output of the workers that have exited.
func (ws *workerGroup) logs() string {
	var s strings.Builder
	for _, p := range ws.procs {
		select {
		case <-p.done:
			fmt.Fprintf(&s, "worker %d (%v):\n%s\n", p.cmd.Process.Pid, p.err, &p.out)
		default:
			fmt.Fprintf(&s, "worker %d: running\n", p.cmd.Process.Pid)
		}
	}
	return s.String()
}

// rollupDigest is a cheap fingerprint of a daily_rollup table: its rows
// and the sums of its counts and totals. Two runs over the same events
// that lose, double or misroute a group differ in at least one.
type rollupDigest struct{ rows, events, cents int64 }

func (d rollupDigest) String() string {
	return fmt.Sprintf("%d rows, %d events, %d cents", d.rows, d.events, d.cents)
}

func digestRollup(b *testing.B, conn *pgx.Conn) rollupDigest {
	b.Helper()
	var d rollupDigest
	err := conn.QueryRow(context.Background(), `SELECT count(*), coalesce(sum(events), 0)::bigint, coalesce(sum(total_cents), 0)::bigint FROM daily_rollup`).
		Scan(&d.rows, &d.events, &d.cents)
	if err != nil {
		b.Fatal(err)
	}
	return d
}
