package pg_test

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/mrengine/mr/internal/pg"
	"github.com/mrengine/mr/internal/pgtest"
)

// runningQueries counts the backends, other than db's own, running a
// query that ends with marker.
func runningQueries(t *testing.T, db *pg.DB, marker string) int {
	t.Helper()
	var n int
	err := db.Pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
		WHERE state = 'active' AND query LIKE '%' || $1 AND pid <> pg_backend_pid()`, marker).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitStopped fails the test unless no backend runs the query that ends
// with marker within d.
func waitStopped(t *testing.T, db *pg.DB, marker string, d time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(d); runningQueries(t, db, marker) > 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the query %s still runs %v later", marker, d)
		}
	}
}

// TestOpen_CancelOnContextEnd ends the context of a long query: the
// server stops the query at once (pgx sends a cancel request as it drops
// the connection), so a cancelled map task leaves nothing running.
func TestOpen_CancelOnContextEnd(t *testing.T) {
	t.Parallel()
	db := open(t, adminURL(t).String()+"&client_connection_check_interval=0") // the cancel alone
	const marker = "/* mr cancel test */"
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, err := db.Pool.Exec(ctx, "SELECT pg_sleep(60) "+marker); err == nil {
		t.Fatal("the query outlived its context")
	}
	waitStopped(t, open(t, pgtest.AdminDSN(t)), marker, time.Second)
}

// killedEnv marks the process that TestOpen_KilledClient starts and kills.
const killedEnv = "MR_PG_TEST_KILLED_DSN"

// TestOpen_KilledClient kills -9 a process in the middle of a long query:
// its backend notices within the connection check (ConnectionCheck) and
// stops the query, where it used to run it to the end.
func TestOpen_KilledClient(t *testing.T) {
	if dsn := os.Getenv(killedEnv); dsn != "" { // the process to kill
		db, err := pg.Open(context.Background(), dsn, pg.Options{})
		if err != nil {
			os.Exit(1)
		}
		db.Pool.Exec(context.Background(), "SELECT pg_sleep(60) /* mr killed client */")
		os.Exit(0)
	}
	t.Parallel()
	watcher := open(t, pgtest.AdminDSN(t))
	const marker = "/* mr killed client */"
	cmd := exec.Command(os.Args[0], "-test.run=^TestOpen_KilledClient$")
	cmd.Env = append(os.Environ(), killedEnv+"="+pgtest.AdminDSN(t))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); runningQueries(t, watcher, marker) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the client's query never started")
		}
	}
	cmd.Process.Kill() // SIGKILL: no cancel request, no goodbye
	cmd.Wait()
	waitStopped(t, watcher, marker, 3*time.Second)
}
