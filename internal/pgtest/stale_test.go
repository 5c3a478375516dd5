package pgtest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// deadPid returns the pid of a process that has exited.
func deadPid(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run true: %v", err)
	}
	return cmd.Process.Pid
}

func TestRemoveStaleClusters(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("unix only")
	}
	tmp := t.TempDir()
	dead := deadPid(t)
	mk := func(name string, lock bool) string {
		t.Helper()
		dir := filepath.Join(tmp, name)
		if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
			t.Fatal(err)
		}
		if lock {
			if err := os.WriteFile(filepath.Join(dir, lockName), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	deadOwner := mk(fmt.Sprintf("%s%d-a", dirPrefix, dead), true)
	neverLocked := mk(fmt.Sprintf("%s%d-b", dirPrefix, dead), false)
	// pid 1 lives: a young unlocked directory is one being created...
	young := mk(dirPrefix+"1-c", true)
	// ...but an old one belongs to nobody.
	old := mk(dirPrefix+"1-d", true)
	longAgo := time.Now().Add(-2 * staleAge)
	if err := os.Chtimes(old, longAgo, longAgo); err != nil {
		t.Fatal(err)
	}
	// A held lock means a live owner, whatever its pid says.
	held := mk(fmt.Sprintf("%s%d-e", dirPrefix, dead), false)
	f, err := lockNew(filepath.Join(held, lockName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Chtimes(held, longAgo, longAgo); err != nil {
		t.Fatal(err)
	}

	removed := removeStaleClusters(tmp)
	for dir, wantGone := range map[string]bool{deadOwner: true, neverLocked: true, young: false, old: true, held: false} {
		_, err := os.Stat(dir)
		if gone := os.IsNotExist(err); gone != wantGone {
			t.Errorf("%s: gone %v, want %v (removed %q)", filepath.Base(dir), gone, wantGone, removed)
		}
	}
}

// orphanEnv makes the test binary, run by TestOrphanedCluster, start a
// cluster, report it and wait to be killed.
const orphanEnv = "MR_PGTEST_ORPHAN_CHILD"

// TestOrphanedCluster kills -9 a test binary that runs a cluster and checks
// that its postmaster dies with it and that the next start removes its
// directory.
func TestOrphanedCluster(t *testing.T) {
	if os.Getenv(orphanEnv) != "" {
		c := get(t).cluster
		if c == nil {
			t.Skip("needs pgtest's own cluster")
		}
		c.mu.Lock()
		pid := c.mu.proc.Cmd.Process.Pid
		c.mu.Unlock()
		fmt.Printf("ORPHAN %s %d\n", c.base, pid)
		time.Sleep(time.Hour)
		return
	}
	t.Parallel()
	if os.Getenv(EnvDSN) != "" {
		t.Skip("needs pgtest's own cluster; " + EnvDSN + " is set")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the parent-death signal is Linux only")
	}
	get(t) // skip or fail here, not in the child, when there is no PostgreSQL

	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestOrphanedCluster$", "-test.v")
	cmd.Env = append(os.Environ(), orphanEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	report := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "ORPHAN "); ok {
				report <- line
				break
			}
		}
		for sc.Scan() { // drain, so the child never blocks on stdout
		}
		close(report)
	}()
	var line string
	select {
	case line = <-report:
	case <-time.After(startTimeout):
		t.Fatal("child did not start a cluster in time")
	}
	base, pidStr, _ := strings.Cut(line, " ")
	pid, err := strconv.Atoi(pidStr)
	if base == "" || err != nil {
		t.Fatalf("child reported %q", line)
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for !gone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("postmaster %d outlived its test binary by 10s", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Stat(base); err != nil {
		t.Fatalf("the orphan's directory: %v", err)
	}
	if !removeIfStale(base) {
		t.Fatalf("%s: not removed as stale", base)
	}
	if _, err := os.Stat(base); !os.IsNotExist(err) {
		t.Fatalf("%s still there: %v", base, err)
	}
}

// gone reports whether pid has exited (a zombie waiting for its reaper
// counts as gone).
func gone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	_, after, _ := strings.Cut(string(b), ") ")
	return strings.HasPrefix(after, "Z") || strings.HasPrefix(after, "X")
}
