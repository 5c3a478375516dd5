package benchmarks

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mrengine/mr/mapreduce"
)

// cpuMeter tells where a contender's time goes: CPU seconds of this
// process (the engine, pgx) and of the PostgreSQL server (every child of
// the postmaster: backends, autovacuum, writers). The server's side is
// read from /proc, so it is known only when the server runs on this
// machine, as pgtest's own cluster does.
type cpuMeter struct {
	postmaster int // 0: the server's processes cannot be seen
	goCPU      time.Duration
	pgCPU      map[int]time.Duration // by pid, at start
}

// clockTick is the unit of utime and stime in /proc/<pid>/stat (USER_HZ),
// 100 on every Linux configuration Go supports.
const clockTick = 10 * time.Millisecond

// newCPUMeter finds the server's postmaster: the parent of conn's backend.
func newCPUMeter(b *testing.B, conn *pgx.Conn) *cpuMeter {
	b.Helper()
	var backend int
	if err := conn.QueryRow(context.Background(), `SELECT pg_backend_pid()`).Scan(&backend); err != nil {
		b.Fatal(err)
	}
	m := &cpuMeter{}
	if st, ok := procStat(backend); ok {
		m.postmaster = st.ppid
	}
	return m
}

// serverVisible reports whether stop can tell the server's CPU time.
func (m *cpuMeter) serverVisible() bool { return m.postmaster != 0 }

// start notes the CPU used so far.
func (m *cpuMeter) start() {
	m.goCPU = selfCPU()
	m.pgCPU = m.serverCPU()
}

// stop returns the CPU used since start: by this process, and by the
// server (0 unless serverVisible). A server process that started and
// exited in between is missed.
func (m *cpuMeter) stop() (goCPU, pgCPU time.Duration) {
	goCPU = selfCPU() - m.goCPU
	for pid, used := range m.serverCPU() {
		pgCPU += used - m.pgCPU[pid]
	}
	return goCPU, pgCPU
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverCPU returns the CPU time of the postmaster's children, by pid.
func (m *cpuMeter) serverCPU() map[int]time.Duration {
	used := map[int]time.Duration{}
	if m.postmaster == 0 {
		return used
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range dirs {
		pid, err := strconv.Atoi(filepath.Base(dir))
		if err != nil {
			continue
		}
		if st, ok := procStat(pid); ok && (st.ppid == m.postmaster || pid == m.postmaster) {
			used[pid] = st.cpu
		}
	}
	return used
}

type stat struct {
	ppid int
	cpu  time.Duration // utime + stime
}

// procStat reads /proc/<pid>/stat: "pid (comm) state ppid … utime stime …",
// where comm may hold spaces and parentheses, so fields count from the
// last ')'.
func procStat(pid int) (stat, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return stat{}, false
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return stat{}, false
	}
	f := bytes.Fields(data[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return stat{}, false
	}
	ppid, err1 := strconv.Atoi(string(f[1]))   // field 4
	utime, err2 := strconv.Atoi(string(f[11])) // field 14
	stime, err3 := strconv.Atoi(string(f[12])) // field 15
	if err1 != nil || err2 != nil || err3 != nil {
		return stat{}, false
	}
	return stat{ppid: ppid, cpu: time.Duration(utime+stime) * clockTick}, true
}

// phaseTimer is a mapreduce.Progress that notes when each phase of a run
// starts and finishes, so that a run's time splits into planning, map
// (read, Map, combine, spill) and reduce (merge, sink).
type phaseTimer struct {
	mu             sync.Mutex
	started, ended map[string]time.Time
}

var _ mapreduce.Progress = (*phaseTimer)(nil)

func newPhaseTimer() *phaseTimer {
	return &phaseTimer{started: map[string]time.Time{}, ended: map[string]time.Time{}}
}

func (p *phaseTimer) Start(phase string, _, _ int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.started[phase] = time.Now()
}

func (p *phaseTimer) Add(string, int64) {}

func (p *phaseTimer) Finish(phase string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ended[phase] = time.Now()
}

// phase returns how long phase took.
func (p *phaseTimer) phase(name string) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ended[name].Sub(p.started[name])
}
