package pgtest

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// staleAge is how old an unlocked cluster directory must be before it is
// removed even though a process with its owner's pid exists: its owner locks
// it microseconds after creating it, so such a pid belongs to someone else.
const staleAge = time.Minute

// removeStaleClusters stops the server of, and removes, every cluster
// directory under tmp whose owner is gone: its lock is free, and its owner
// pid is dead or the directory is older than staleAge. Directories it cannot
// read (another user's) are left alone. It is best effort and never fails.
func removeStaleClusters(tmp string) (removed []string) {
	dirs, _ := filepath.Glob(filepath.Join(tmp, dirPrefix+"*"))
	for _, dir := range dirs {
		if removeIfStale(dir) {
			removed = append(removed, dir)
		}
	}
	return removed
}

func removeIfStale(dir string) bool {
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() {
		return false
	}
	pid := ownerPid(filepath.Base(dir))
	if pid == os.Getpid() {
		return false
	}
	ownerGone := pid <= 0 || !processAlive(pid) || time.Since(fi.ModTime()) > staleAge
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Crashed before locking, or about to lock.
		if !ownerGone {
			return false
		}
	case err != nil:
		return false
	default:
		defer f.Close() // after the removal, so no one else starts on it
		if ok, _ := tryLock(f); !ok || !ownerGone {
			return false
		}
	}
	stopStalePostmaster(filepath.Join(dir, "data"))
	return os.RemoveAll(dir) == nil
}

// ownerPid parses the pid out of "mr-pgtest-<pid>-<random>".
func ownerPid(name string) int {
	rest, ok := strings.CutPrefix(name, dirPrefix)
	if !ok {
		return 0
	}
	pidStr, _, _ := strings.Cut(rest, "-")
	pid, err := strconv.Atoi(pidStr)
	if err != nil {
		return 0
	}
	return pid
}

// stopStalePostmaster stops the postmaster named by data's postmaster.pid
// with an immediate shutdown, then SIGKILL. Where the OS tells, it first
// checks that the pid still runs a postgres on that data directory, not
// some process that inherited the pid.
func stopStalePostmaster(data string) {
	b, err := os.ReadFile(filepath.Join(data, "postmaster.pid"))
	if err != nil {
		return
	}
	first, _, _ := bytes.Cut(b, []byte("\n"))
	pid, err := strconv.Atoi(string(bytes.TrimSpace(first)))
	if err != nil || pid <= 0 || !processAlive(pid) {
		return
	}
	if cmdline, ok := processCmdline(pid); ok && !strings.Contains(cmdline, data) {
		return
	}
	if quitProcess(pid) != nil {
		return
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if !processAlive(pid) {
			return
		}
	}
	_ = killProcess(pid)
}

// dropStaleSchemas drops the schemas that pgtest created in earlier runs
// whose test binary is gone: those whose run token's advisory lock is free.
// conn is the session holding this run's own lock (own), which it skips.
func dropStaleSchemas(ctx context.Context, conn *pgx.Conn, own string) (int, error) {
	rows, err := conn.Query(ctx, `
		SELECT nspname, substr(obj_description(oid, 'pg_namespace'), $1)
		FROM pg_namespace
		WHERE starts_with(coalesce(obj_description(oid, 'pg_namespace'), ''), $2)
		ORDER BY nspname`, len(schemaComment)+1, schemaComment)
	if err != nil {
		return 0, err
	}
	byToken := map[string][]string{}
	var tokens []string
	for rows.Next() {
		var name, token string
		if err := rows.Scan(&name, &token); err != nil {
			return 0, err
		}
		if _, ok := tokenKey(token); !ok || token == own {
			continue
		}
		if byToken[token] == nil {
			tokens = append(tokens, token)
		}
		byToken[token] = append(byToken[token], name)
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	dropped := 0
	for _, token := range tokens {
		key, _ := tokenKey(token)
		var free bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, $2)", lockClass, key).Scan(&free); err != nil {
			return dropped, err
		}
		if !free {
			continue // that test binary still runs
		}
		for _, name := range byToken[token] {
			if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
				return dropped, err
			}
			dropped++
		}
		if _, err := conn.Exec(ctx, "SELECT pg_advisory_unlock($1, $2)", lockClass, key); err != nil {
			return dropped, err
		}
	}
	return dropped, nil
}
