package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mrengine/mr/internal/testserver"
)

const (
	// dirPrefix starts the name of every cluster directory, followed by the
	// owner's pid and a random suffix: mr-pgtest-<pid>-<random>.
	dirPrefix = "mr-pgtest-"
	// lockName is the file in a cluster directory that its owner holds
	// locked (flock) while it lives.
	lockName = "owner.lock"
	// serverUser runs initdb and postgres when the tests run as root.
	serverUser = "postgres"
	// portAttempts bounds the retries when another process takes the free
	// port between our probe and the server's bind.
	portAttempts = 5
	// stopTimeout bounds a shutdown before it escalates to SIGKILL.
	stopTimeout = 30 * time.Second
)

// hbaConf makes everything trusted except TCP logins of PasswordRole, which
// must give a password, so that a wrong password is testable. Lines match
// in order.
const hbaConf = `# written by mr's internal/pgtest
local all all                       trust
host  all ` + PasswordRole + ` 127.0.0.1/32 scram-sha-256
host  all all   127.0.0.1/32        trust
`

// cluster is a PostgreSQL cluster the harness owns: its directory, its
// server process and how to run it.
type cluster struct {
	bin  string   // directory of initdb and postgres
	base string   // the cluster directory; also the unix socket directory
	data string   // PGDATA, under base
	port int      // TCP port on 127.0.0.1, kept across restarts
	as   *runAs   // whom initdb and postgres run as; nil: the current user
	lock *os.File // base/owner.lock, flock'ed while we live

	mu struct {
		sync.Mutex
		proc *testserver.Process // the postmaster; nil while stopped
	}
}

// startCluster finds the server binaries, removes stale clusters, runs
// initdb into a fresh directory and starts the server.
func startCluster(ctx context.Context) (c *cluster, err error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	as, err := serverRunAs()
	if err != nil {
		return nil, err
	}
	removeStaleClusters(os.TempDir())

	base, err := os.MkdirTemp("", dirPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return nil, fmt.Errorf("cluster directory: %w", err)
	}
	c = &cluster{bin: bin, base: base, data: filepath.Join(base, "data"), as: as}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.shutdown())
		}
	}()
	if c.lock, err = lockNew(filepath.Join(base, lockName)); err != nil {
		return nil, fmt.Errorf("cluster directory lock: %w", err)
	}
	if err := as.chown(base); err != nil {
		return nil, fmt.Errorf("cluster directory: %w", err)
	}
	if err := c.initdb(ctx); err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		if c.port, err = testserver.FreePort(); err != nil {
			return nil, err
		}
		err = c.start(ctx)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, errPortTaken) || attempt == portAttempts {
			return nil, err
		}
	}
}

// initdb creates the cluster's data directory and its pg_hba.conf.
func (c *cluster) initdb(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, "initdb"),
		"-D", c.data, "-U", "postgres", "-A", "trust", "--no-sync",
		"-E", "UTF8", "--locale=C")
	cmd.Dir = c.base // the test's working directory may be closed to serverUser
	c.as.apply(cmd, false)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s failed%s: %w\n%s", cmd, c.as.describe(), err, testserver.Tail(out))
	}
	if err := os.WriteFile(filepath.Join(c.data, "pg_hba.conf"), []byte(hbaConf), 0o600); err != nil {
		return fmt.Errorf("pg_hba.conf: %w", err)
	}
	return nil
}

var errPortTaken = errors.New("port taken")

// start starts the server on c.port and waits until it accepts connections.
func (c *cluster) start(ctx context.Context) error {
	logPath := filepath.Join(c.base, "postgres.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own copy
	args := []string{
		"-D", c.data,
		"-p", strconv.Itoa(c.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + c.base,
		// Room for many parallel tests with pools of their own.
		"-c", "max_connections=200",
		"-c", "shared_buffers=256MB",
	}
	if os.Getenv(EnvDurable) == "" {
		// Nothing in this cluster outlives the test binary: trade all
		// durability for speed.
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	cmd := exec.Command(filepath.Join(c.bin, "postgres"), args...)
	cmd.Dir = c.base
	cmd.Stdout, cmd.Stderr = logFile, logFile
	c.as.apply(cmd, true)

	p, err := testserver.Start(cmd)
	if err != nil {
		return fmt.Errorf("start %s%s: %w", cmd.Path, c.as.describe(), err)
	}
	c.mu.Lock()
	c.mu.proc = p
	c.mu.Unlock()

	if err := c.waitReady(ctx, p); err != nil {
		_ = c.stop(syscall.SIGQUIT)
		log, _ := os.ReadFile(logPath)
		if bytes.Contains(log, []byte("could not bind")) || bytes.Contains(log, []byte("could not create any TCP/IP sockets")) {
			err = fmt.Errorf("%w: %w", errPortTaken, err)
		}
		return fmt.Errorf("%s%s: %w\n%s", cmd, c.as.describe(), err, testserver.Tail(log))
	}
	return nil
}

// waitReady polls until the server accepts a connection on its socket, the
// process exits, or ctx ends.
func (c *cluster) waitReady(ctx context.Context, p *testserver.Process) error {
	for {
		connCtx, cancel := context.WithTimeout(ctx, time.Second)
		conn, err := pgx.Connect(connCtx, c.socketDSN())
		cancel()
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-p.Exited():
			return fmt.Errorf("server exited before accepting connections: %v", p.Err())
		case <-ctx.Done():
			return fmt.Errorf("server did not accept connections in time: %w (last: %v)", ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// restart stops the server with a fast shutdown and starts it again on the
// same port.
func (c *cluster) restart(ctx context.Context) error {
	if err := c.stop(syscall.SIGINT); err != nil {
		return err
	}
	var err error
	for range portAttempts {
		if err = c.start(ctx); err == nil || !errors.Is(err, errPortTaken) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
	return err
}

// stop signals the server (SIGINT: fast shutdown, SIGQUIT: immediate) and
// waits for it to exit, escalating to SIGKILL after stopTimeout.
func (c *cluster) stop(sig syscall.Signal) error {
	c.mu.Lock()
	p := c.mu.proc
	c.mu.proc = nil
	c.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.Stop(sig, stopTimeout, "postgres")
}

// shutdown stops the server at once and removes the cluster directory,
// releasing the lock last so that nobody else removes it under us.
func (c *cluster) shutdown() error {
	err := c.stop(syscall.SIGQUIT)
	if rmErr := os.RemoveAll(c.base); rmErr != nil {
		err = errors.Join(err, rmErr)
	}
	if c.lock != nil {
		c.lock.Close()
	}
	return err
}

func (c *cluster) tcpDSN() string {
	return "postgres://postgres@127.0.0.1:" + strconv.Itoa(c.port) + "/postgres?sslmode=disable"
}

func (c *cluster) socketDSN() string {
	return "host=" + c.base + " port=" + strconv.Itoa(c.port) + " user=postgres dbname=postgres sslmode=disable"
}

// findBin returns the first directory holding both initdb and postgres.
func findBin() (string, error) {
	var tried []string
	has := func(dir string) bool {
		if dir == "" {
			return false
		}
		tried = append(tried, dir)
		for _, name := range []string{"initdb", "postgres"} {
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
				return false
			}
		}
		return true
	}
	if dir := os.Getenv(EnvPGBin); dir != "" {
		if has(dir) {
			return dir, nil
		}
		return "", fmt.Errorf("%s=%s holds no initdb and postgres", EnvPGBin, dir)
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		// Report, and run from, the real directory behind a symlink such as
		// /usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb.
		if real, err := filepath.EvalSymlinks(p); err == nil && has(filepath.Dir(real)) {
			return filepath.Dir(real), nil
		}
		if has(filepath.Dir(p)) {
			return filepath.Dir(p), nil
		}
	}
	tried = append(tried, "$PATH")
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); has(dir) {
			return dir, nil
		}
	} else {
		tried = append(tried, "pg_config --bindir")
	}
	var dirs []string
	for _, pattern := range []string{
		"/usr/lib/postgresql/*/bin",         // Debian, Ubuntu
		"/usr/pgsql-*/bin",                  // RHEL (PGDG)
		"/opt/homebrew/opt/postgresql*/bin", // macOS, Apple silicon
		"/usr/local/opt/postgresql*/bin",    // macOS, Intel
		"/Applications/Postgres.app/Contents/Versions/*/bin",
	} {
		matches, _ := filepath.Glob(pattern)
		sort.Slice(matches, func(i, j int) bool { return versionOf(matches[i]) > versionOf(matches[j]) })
		dirs = append(dirs, matches...)
		if len(matches) == 0 {
			tried = append(tried, pattern)
		}
	}
	dirs = append(dirs, "/usr/local/pgsql/bin", "/usr/lib/postgresql/bin")
	for _, dir := range dirs {
		if has(dir) {
			return dir, nil
		}
	}
	return "", fmt.Errorf("found no initdb and postgres; looked in %s", strings.Join(tried, ", "))
}

// versionOf extracts the major version from a path such as
// /usr/lib/postgresql/15/bin or /opt/homebrew/opt/postgresql@16/bin, for
// picking the newest.
func versionOf(path string) int {
	parts := strings.Split(path, string(filepath.Separator))
	for i, part := range parts {
		var digits string
		switch {
		case part == "postgresql" && i+1 < len(parts):
			digits = parts[i+1]
		case strings.HasPrefix(part, "postgresql@"), strings.HasPrefix(part, "postgresql-"):
			digits = part[len("postgresql@"):]
		default:
			continue
		}
		if v, err := strconv.Atoi(strings.SplitN(digits, ".", 2)[0]); err == nil {
			return v
		}
	}
	return 0
}
