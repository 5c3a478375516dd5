package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mrengine/mr/internal/pg"
	"github.com/mrengine/mr/internal/testserver"
)

// EnvDSN names the environment variable that points pgtest at an existing
// server instead of starting one.
const EnvDSN = "MR_TEST_DSN"

// EnvDurable, set to anything, starts the cluster with PostgreSQL's
// durable defaults (fsync, synchronous_commit and full_page_writes on),
// for benchmarks whose numbers must be a production server's.
const EnvDurable = "MR_TEST_DURABLE"

// EnvPGBin names the environment variable that points pgtest at the
// directory holding initdb and postgres, ahead of every other place.
const EnvPGBin = "MR_TEST_PGBIN"

// PasswordRole is the role PasswordDSN connects as; its password is
// RolePassword. TCP connections as this role must authenticate with
// scram-sha-256 while every other connection is trusted.
const (
	PasswordRole = "mr_pw"
	RolePassword = "secret"
)

// Main runs the tests of a package and exits; call it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run runs the tests, then stops the cluster pgtest started, if any, and
// removes its directory. It returns the exit code for os.Exit: m.Run's, or 1
// if the tests passed but the shutdown failed. A helper called after Run
// fails its test.
func Run(m *testing.M) int {
	code := m.Run()
	if err := shutdown(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// DSN returns the DSN of a fresh schema, like Schema.
func DSN(t testing.TB) string {
	t.Helper()
	_, dsn := Schema(t)
	return dsn
}

// Schema creates a fresh, empty schema, dropped in t.Cleanup, and returns its
// name and a DSN whose connections have search_path set to it alone (see the
// package doc). The DSN is a postgres:// URL when pgtest runs the cluster or
// MR_TEST_DSN is one.
func Schema(t testing.TB) (schema, dsn string) {
	t.Helper()
	h := get(t)
	schema = h.createSchema(t, "")
	return schema, withSearchPath(h.dsn, schema)
}

// Pool returns a pool on a fresh schema (see Schema), closed in t.Cleanup.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return PoolFor(t, DSN(t))
}

// PoolFor returns a pool on dsn, closed in t.Cleanup, and reset by
// Restart.
func PoolFor(t testing.TB, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), dsn)
	if err != nil {
		t.Fatalf("pgtest: pool for %s: %v", pg.Redact(dsn), err)
	}
	openPools.Lock()
	openPools.m[pool] = true
	openPools.Unlock()
	t.Cleanup(func() {
		openPools.Lock()
		delete(openPools.m, pool)
		openPools.Unlock()
		pool.Close()
	})
	return pool
}

// openPools are the pools of PoolFor not yet closed. Restart resets them:
// their idle connections die with the server, and pgxpool pings only
// those idle for over a second before it hands one out, so a query right
// after a restart would fail with "terminating connection due to
// administrator command".
var openPools = struct {
	sync.Mutex
	m map[*pgxpool.Pool]bool
}{m: map[*pgxpool.Pool]bool{}}

// Tx begins a transaction that is rolled back in t.Cleanup, for tests that
// never commit. Its search_path is set to a fresh schema created inside the
// transaction, so the rollback drops the schema too. The transaction holds
// one connection of a pool shared by the test binary until the test ends.
func Tx(t testing.TB) pgx.Tx {
	t.Helper()
	h := get(t)
	ctx := t.Context()
	tx, err := h.pool.Begin(ctx)
	if err != nil {
		t.Fatalf("pgtest: begin: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if err := tx.Rollback(ctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
			t.Errorf("pgtest: rollback: %v", err)
		}
	})
	name := pgx.Identifier{nextSchemaName()}.Sanitize()
	if _, err := tx.Exec(ctx, "CREATE SCHEMA "+name+"; SET LOCAL search_path TO "+name); err != nil {
		t.Fatalf("pgtest: schema for Tx: %v", err)
	}
	return tx
}

// AdminDSN returns the superuser DSN of the cluster (MR_TEST_DSN itself when
// set), with the server's default search_path. What a test creates through
// it is shared by every test of the binary and is not cleaned up.
func AdminDSN(t testing.TB) string {
	t.Helper()
	return get(t).dsn
}

// PasswordDSN returns a TCP DSN that connects as PasswordRole with password,
// to a fresh schema owned by that role (search_path set to it, dropped in
// t.Cleanup). With RolePassword it connects; with any other password the
// connection fails with SQLSTATE 28P01 (invalid_password). It skips the test
// under MR_TEST_DSN, whose authentication rules pgtest does not control.
func PasswordDSN(t testing.TB, password string) string {
	t.Helper()
	h := get(t)
	if h.cluster == nil {
		t.Skip("pgtest: PasswordDSN needs the cluster pgtest starts itself (it writes pg_hba.conf); unset " + EnvDSN + " to run this test")
	}
	schema := h.createSchema(t, PasswordRole)
	u := url.URL{
		Scheme: "postgres",
		User:   url.UserPassword(PasswordRole, password),
		Host:   net.JoinHostPort("127.0.0.1", strconv.Itoa(h.cluster.port)),
		Path:   "/postgres",
	}
	u.RawQuery = "sslmode=disable"
	return withSearchPath(u.String(), schema)
}

// Restart restarts the cluster (fast shutdown, then start on the same port)
// and waits until it accepts connections again, for connection-fault tests.
// Every open connection breaks; pgtest's own pools and those of PoolFor
// are reset, so that their next use connects anew. Because it disturbs
// every test of the binary, call it only from a test that does not call
// t.Parallel (go test runs those while the parallel tests wait). It skips
// the test under MR_TEST_DSN.
func Restart(t testing.TB) {
	t.Helper()
	h := get(t)
	if h.cluster == nil {
		t.Skip("pgtest: Restart needs the cluster pgtest starts itself; unset " + EnvDSN + " to run this test")
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), startTimeout)
	defer cancel()
	if err := h.cluster.restart(ctx); err != nil {
		t.Fatalf("pgtest: restart: %v", err)
	}
	h.pool.Reset()
	openPools.Lock()
	for pool := range openPools.m {
		pool.Reset()
	}
	openPools.Unlock()
}

const (
	// startTimeout bounds initdb plus the wait for the server to accept
	// connections; a cold start takes a few seconds, a loaded CI box more.
	startTimeout = 2 * time.Minute
	// cleanupTimeout bounds a DROP SCHEMA or ROLLBACK in t.Cleanup; one that
	// waits longer is stuck behind a lock the test leaked.
	cleanupTimeout = 30 * time.Second
	// poolMaxConns sizes the shared pool behind Tx and schema management: Tx
	// holds a connection for a whole test, and tests run GOMAXPROCS at a
	// time by default; the harness's own cluster allows 200 connections.
	poolMaxConns = 32
	// schemaComment marks the schemas pgtest creates, followed by the run
	// token, so that stale ones can be found and nothing else is dropped.
	schemaComment = "mr pgtest run "
	// lockClass is the first key of the advisory lock a test binary holds
	// on its run token ("mr"); the second is the token itself.
	lockClass = 0x6d72
)

// harness is the per-binary state behind the helpers.
type harness struct {
	dsn      string        // superuser DSN handed out (AdminDSN); URL form when pgtest runs the cluster
	pool     *pgxpool.Pool // shared: schema management and Tx
	cluster  *cluster      // nil under MR_TEST_DSN
	lockConn *pgx.Conn     // under MR_TEST_DSN: holds the run token's advisory lock
	summary  string        // how the cluster came to be, logged by the first test
}

var (
	once     sync.Once
	h        *harness
	errSetup error

	runToken   = newRunToken()
	pkgName    = packageName(os.Args[0])
	schemaSeq  atomic.Int64
	errStopped = errors.New("pgtest: a helper was called after pgtest.Run's m.Run returned")
)

// get returns the harness, starting it on first use, or skips or fails t if
// there is no PostgreSQL to test against.
func get(t testing.TB) *harness {
	t.Helper()
	first := false
	once.Do(func() {
		first = true
		h, errSetup = setup()
	})
	if errSetup != nil {
		if errors.Is(errSetup, errStopped) {
			t.Fatal(errSetup)
		}
		unavailable(t, errSetup)
	}
	if first {
		t.Log(h.summary)
	}
	return h
}

// unavailable reports that no PostgreSQL could be had: a failure under
// CI=true, a skip otherwise.
func unavailable(t testing.TB, err error) {
	t.Helper()
	fix := fmt.Sprintf("install the PostgreSQL server (e.g. apt-get install postgresql, brew install postgresql),\n"+
		"\tor point %s at its bin directory, or set %s=postgres://user@host:5432/db (a database for tests only)", EnvPGBin, EnvDSN)
	if os.Getenv(EnvDSN) != "" {
		fix = fmt.Sprintf("check that the server %s names is up and that its role may CREATE SCHEMA,\n"+
			"\tor unset %s to let pgtest start a PostgreSQL of its own", EnvDSN, EnvDSN)
	}
	msg := fmt.Sprintf("pgtest: no PostgreSQL for tests: %v\n\tto fix: %s", err, fix)
	if testserver.InCI() {
		t.Fatal(msg)
		return
	}
	t.Skip(msg + "\n\t(skipped; with CI=true this fails)")
}

func setup() (*harness, error) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		return setupExternal(ctx, dsn)
	}
	return setupCluster(ctx)
}

// setupExternal uses the server at dsn: it takes the run token's advisory
// lock, drops the schemas of runs whose lock is free, and opens the pool.
func setupExternal(ctx context.Context, dsn string) (*harness, error) {
	if _, err := pgx.ParseConfig(dsn); err != nil {
		return nil, fmt.Errorf("%s is set but does not parse: %w", EnvDSN, err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("%s is set (%s) but connecting failed: %w", EnvDSN, pg.Redact(dsn), err)
	}
	key, _ := tokenKey(runToken)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1, $2)", lockClass, key); err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("%s: advisory lock: %w", EnvDSN, err)
	}
	dropped, err := dropStaleSchemas(ctx, conn, runToken)
	if err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("%s: dropping stale test schemas: %w", EnvDSN, err)
	}
	pool, err := newPool(ctx, dsn)
	if err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("%s: %w", EnvDSN, err)
	}
	return &harness{
		dsn:      dsn,
		pool:     pool,
		lockConn: conn,
		summary:  fmt.Sprintf("pgtest: using %s=%s (run %s, dropped %d stale schemas)", EnvDSN, pg.Redact(dsn), runToken, dropped),
	}, nil
}

// setupCluster starts the harness's own cluster.
func setupCluster(ctx context.Context) (*harness, error) {
	began := time.Now()
	c, err := startCluster(ctx)
	if err != nil {
		return nil, err
	}
	pool, err := newPool(ctx, c.socketDSN())
	if err == nil {
		// scram-sha-256 is the default since PostgreSQL 14; older servers
		// would store an md5 hash, which pg_hba's scram-sha-256 rejects.
		_, err = pool.Exec(ctx, "SET password_encryption = 'scram-sha-256'; "+
			"CREATE ROLE "+PasswordRole+" LOGIN PASSWORD '"+RolePassword+"'")
		if err != nil {
			pool.Close()
		}
	}
	if err != nil {
		if stopErr := c.shutdown(); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
		return nil, err
	}
	return &harness{
		dsn:     c.tcpDSN(),
		pool:    pool,
		cluster: c,
		summary: fmt.Sprintf("pgtest: started PostgreSQL (%s) in %s: %s, data in %s",
			c.bin, time.Since(began).Round(time.Millisecond), c.tcpDSN(), c.base),
	}, nil
}

func newPool(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = poolMaxConns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// shutdown releases what setup took. It also ends the Once, so a later
// helper call fails instead of starting a cluster nobody stops.
func shutdown() error {
	once.Do(func() { errSetup = errStopped })
	if h == nil {
		return nil
	}
	h.pool.Close()
	var err error
	if h.lockConn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		err = h.lockConn.Close(ctx)
	}
	if h.cluster != nil {
		err = errors.Join(err, h.cluster.shutdown())
	}
	errSetup, h = errStopped, nil
	return err
}

// createSchema creates the next schema of this run, owned by owner if not
// empty, and drops it in t.Cleanup.
func (h *harness) createSchema(t testing.TB, owner string) string {
	t.Helper()
	name := nextSchemaName()
	ident := pgx.Identifier{name}.Sanitize()
	sql := "CREATE SCHEMA " + ident
	if owner != "" {
		sql += " AUTHORIZATION " + pgx.Identifier{owner}.Sanitize()
	}
	sql += "; COMMENT ON SCHEMA " + ident + " IS '" + schemaComment + runToken + "'"
	if _, err := h.pool.Exec(t.Context(), sql); err != nil {
		t.Fatalf("pgtest: create schema %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), cleanupTimeout)
		defer cancel()
		if _, err := h.pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+ident+" CASCADE"); err != nil {
			// Not a test failure: a later run drops it (MR_TEST_DSN), or it
			// goes with the cluster.
			t.Logf("pgtest: drop schema %s: %v", name, err)
		}
	})
	return name
}

func nextSchemaName() string {
	return pkgName + "_" + runToken + "_" + strconv.FormatInt(schemaSeq.Add(1), 10)
}

// newRunToken returns 8 random hex digits naming this test binary's run.
func newRunToken() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// tokenKey turns a run token into the second key of its advisory lock.
func tokenKey(token string) (int32, bool) {
	if len(token) != 8 {
		return 0, false
	}
	v, err := strconv.ParseUint(token, 16, 32)
	if err != nil {
		return 0, false
	}
	return int32(uint32(v)), true
}

// packageName derives the <pkg> part of schema names from the test binary's
// path: "/tmp/go-build…/sources.test" gives "sources". It keeps to
// [a-z0-9_], a leading letter and 41 bytes, so that a schema name needs no quoting and stays
// under PostgreSQL's 63-byte limit.
func packageName(arg0 string) string {
	name := testserver.PackageName(arg0, '_')
	if len(name) > 40 {
		name = name[:40]
	}
	if name == "" || name[0] < 'a' || name[0] > 'z' {
		name = "t" + name
	}
	return name
}

// withSearchPath returns dsn with search_path set to schema alone, in the
// connection's startup options. A postgres:// URL gets (or extends) its
// options parameter; a key=value DSN gets an options key appended, which
// replaces any options it had.
func withSearchPath(dsn, schema string) string {
	opt := "-c search_path=" + schema
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err == nil {
			q := u.Query()
			if old := q.Get("options"); old != "" {
				opt = old + " " + opt
			}
			q.Set("options", opt)
			// libpq decodes only %XX in URLs, not '+' (and Encode writes a
			// literal '+' as %2B, so every '+' left is a space).
			u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
			return u.String()
		}
	}
	return dsn + " options='" + opt + "'"
}
