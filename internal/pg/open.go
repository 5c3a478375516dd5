package pg

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mrengine/mr/internal/redact"
)

// ConnectTimeout bounds one connection attempt unless the DSN sets
// connect_timeout, so that an unreachable host (packets dropped, not
// refused) costs one retry, not the kernel's two-minute TCP timeout.
const ConnectTimeout = 10 * time.Second

// forms shows the DSN forms, for parse errors.
const forms = "write postgres://USER:PASSWORD@HOST:PORT/DATABASE or host=HOST port=PORT dbname=DATABASE"

// Parse parses dsn, a postgres:// URL or a key=value string, with pgx's
// parser, so that the PG* environment variables, a service file and
// ~/.pgpass fill in what it leaves out, as for psql; and it sets mr's
// defaults where the DSN sets nothing:
//
//   - the pool holds at most maxConns connections, unless pool_max_conns
//     is set (and so for the other pool_* settings, which keep pgx's
//     defaults);
//   - connect_timeout is ConnectTimeout;
//   - queries run in QueryExecModeCacheStatement: each is prepared once
//     per connection and then bound with binary results, the fastest mode
//     for a query run thousands of times with new parameters. It is pgx's
//     default too; it is set because the sources' decoding counts on
//     binary results;
//   - application_name is "mr", so that pg_stat_activity tells mr's
//     connections apart (DB.SetApplicationName names the run once it is
//     known);
//   - on PostgreSQL 14 and later, client_connection_check_interval is
//     ConnectionCheck, so that a backend whose client died (kill -9 of
//     mr) stops its query within that time instead of running it to the
//     end.
//
// Its error holds no password.
func Parse(dsn string, maxConns int32) (*pgxpool.Config, error) {
	cfg, _, err := parse(dsn, Options{MaxConns: maxConns})
	return cfg, err
}

// parse is Parse, and reports whether the DSN (or PGAPPNAME) set
// application_name itself.
func parse(dsn string, opts Options) (cfg *pgxpool.Config, userApp bool, err error) {
	fail := func(err error) error { return redact.Error(fmt.Errorf("%w (%s)", err, forms), Secrets(dsn)...) }
	// pgxpool.ParseConfig consumes pool_max_conns, so look for it first,
	// also where a service file set it.
	conn, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return nil, false, fail(err)
	}
	_, setMax := conn.RuntimeParams["pool_max_conns"]
	cfg, err = pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, false, fail(err)
	}
	if !setMax && opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	cc := cfg.ConnConfig
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = ConnectTimeout
	}
	cc.DefaultQueryExecMode = pgx.QueryExecModeCacheStatement
	_, userApp = cc.RuntimeParams["application_name"]
	if !userApp {
		cc.RuntimeParams["application_name"] = applicationName
	}
	if _, set := cc.RuntimeParams["idle_in_transaction_session_timeout"]; !set && opts.IdleInTransaction > 0 {
		cc.RuntimeParams["idle_in_transaction_session_timeout"] = strconv.FormatInt(opts.IdleInTransaction.Milliseconds(), 10)
	}
	if _, set := cc.RuntimeParams["client_connection_check_interval"]; !set {
		cfg.AfterConnect = checkConnection
	}
	return cfg, userApp, nil
}

// ConnectionCheck is the client_connection_check_interval of mr's
// sessions: how soon a query notices that mr is gone. (A query whose
// context ends is cancelled at once: pgx sends the server a cancel
// request as it drops the connection.)
const ConnectionCheck = "2s"

// checkConnection sets client_connection_check_interval on a new
// connection to a server that has it (PostgreSQL 14 and later): as a
// startup parameter it would make older servers refuse the connection.
func checkConnection(ctx context.Context, c *pgx.Conn) error {
	major, _, _ := strings.Cut(c.PgConn().ParameterStatus("server_version"), ".")
	if v, err := strconv.Atoi(major); err != nil || v < 14 {
		return nil
	}
	_, err := c.Exec(ctx, "SELECT pg_catalog.set_config('client_connection_check_interval', $1, false)", ConnectionCheck)
	return err
}

// applicationName is the application_name of mr's connections until
// SetApplicationName names the run.
const applicationName = "mr"

// DB is a pool on one PostgreSQL database, with what messages need to
// name it. It is safe for concurrent use.
type DB struct {
	Pool *pgxpool.Pool

	name     string   // Name of the config: String
	server   string   // host:port or unix socket, for UnavailableError
	database string   // for UnavailableError
	secrets  []string // to scrub from messages

	// app is the application_name that SetApplicationName asked for, which
	// each connection takes on when it is next acquired; nil where the DSN
	// set its own.
	app *atomic.Pointer[string]
}

// Options are the settings of Open that differ between its callers.
type Options struct {
	// MaxConns sizes the pool unless the DSN sets pool_max_conns; pgx's
	// default (4, or the CPUs if more) when zero.
	MaxConns int32
	// IdleInTransaction, if positive, is the sessions'
	// idle_in_transaction_session_timeout unless the DSN sets one: the
	// server ends a session whose client has left a transaction open that
	// long, and releases its locks, so that a process that froze inside a
	// transaction (SIGSTOP, a paused VM) cannot block the others.
	IdleInTransaction time.Duration
}

// Open parses dsn (see Parse), opens a pool on it and pings it. Close it
// when done.
//
// Opening retries only while the server says it is starting up or shutting
// down (SQLSTATE 57P03), which can only end in a connection, within
// DefaultBudget or ctx. Every other failure is reported at once, with a
// hint of what to check: a refused connection is as likely a wrong host or
// port as a server restarting, and whoever typed the command should learn
// which at once, as with psql. Faults after a run has started are retried
// by each call (Retry), and a run that fails is resumed by running it again.
//
// Its errors name the server and database (String) and hold no password.
func Open(ctx context.Context, dsn string, opts Options) (*DB, error) {
	cfg, userApp, err := parse(dsn, opts)
	if err != nil {
		return nil, err
	}
	cc := &cfg.ConnConfig.Config
	db := &DB{
		name:     Name(cc),
		server:   serverAddr(cc.Host, cc.Port),
		database: cc.Database,
		secrets:  Secrets(dsn),
	}
	if cc.Password != "" {
		db.secrets = append(db.secrets, cc.Password)
	}
	if !userApp {
		db.app = new(atomic.Pointer[string])
		cfg.PrepareConn = db.prepareConn
	}
	db.Pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, db.Scrub(fmt.Errorf("open a pool on %s: %w", db, err))
	}
	_, err = Do(ctx, DefaultBudget, func(ctx context.Context) error {
		err := db.Pool.Ping(ctx)
		if err != nil && !starting(err) {
			return Stop(err)
		}
		return err
	})
	if err != nil {
		db.Pool.Close()
		if hint := ConnectHint(err); hint != "" {
			err = fmt.Errorf("%w (%s)", err, hint)
		}
		return nil, db.Scrub(fmt.Errorf("cannot connect to %s: %w", db, err))
	}
	return db, nil
}

// starting reports whether err says the server is starting up, shutting
// down or in recovery: SQLSTATE 57P03, cannot_connect_now.
func starting(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "57P03"
}

// ConnectHint tells what to check after a connection failed with err, or
// "" when the server refused for a reason the DSN does not fix.
func ConnectHint(err error) string {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return "check that the server is up, and the host and port of the URL"
	}
	switch pgErr.Code {
	case "28P01", "28000": // invalid_password, invalid_authorization_specification
		return "check the user and password of the URL, or PGPASSWORD and ~/.pgpass"
	case "3D000": // invalid_catalog_name
		return "check the database name of the URL"
	}
	return ""
}

// String returns the canonical name of the database (see Name).
func (db *DB) String() string { return db.name }

// Scrub returns err with the database's password removed from its
// message (see redact.Error).
func (db *DB) Scrub(err error) error { return redact.Error(err, db.secrets...) }

// SetApplicationName sets the application_name of the pool's connections
// to name, e.g. "mr/daily_rollup-5e0c1a7f" once the run id is known, so
// that operators can tell a run's sessions in pg_stat_activity. Each
// connection takes it on when it is next acquired (one SET, then none), so
// a connection in use keeps the old name until it is handed back. It does
// nothing where the DSN or PGAPPNAME set application_name: the user's name
// wins. name is cut to 63 bytes and non-ASCII becomes '?', as the server
// would do, so that the name asked for is the name the server reports.
func (db *DB) SetApplicationName(name string) {
	if db.app == nil {
		return
	}
	b := []byte(name)
	for i, c := range b {
		if c < ' ' || c > '~' {
			b[i] = '?'
		}
	}
	name = string(b[:min(len(b), maxApplicationName)])
	db.app.Store(&name)
}

// SearchPath returns the schemas, in order, in which the pool's sessions
// find an unqualified table name: their search_path as the server
// resolves it (current_schemas), whichever of the DSN, PGOPTIONS or an
// ALTER ROLE … SET chose it, retrying as Retry does for budget.
func (db *DB) SearchPath(ctx context.Context, budget time.Duration) (string, error) {
	var path string
	err := db.Retry(ctx, budget, func(ctx context.Context) error {
		return db.Pool.QueryRow(ctx, "SELECT array_to_string(current_schemas(false), ',')").Scan(&path)
	})
	return path, db.Scrub(err)
}

// NameRun names the pool's sessions after run, "mr/<run>" (see
// SetApplicationName).
func (db *DB) NameRun(run string) { db.SetApplicationName("mr/" + run) }

// maxApplicationName is the bytes of application_name the server keeps
// (NAMEDATALEN - 1).
const maxApplicationName = 63

// prepareConn gives c the application_name of SetApplicationName, if any
// and if the server does not already report it for c. A failed SET fails
// the acquire and drops c, whose state is then unknown.
func (db *DB) prepareConn(ctx context.Context, c *pgx.Conn) (bool, error) {
	want := db.app.Load()
	if want == nil || c.PgConn().ParameterStatus("application_name") == *want {
		return true, nil
	}
	if _, err := c.Exec(ctx, "SELECT pg_catalog.set_config('application_name', $1, false)", *want); err != nil {
		return false, err
	}
	return true, nil
}

// Close closes the pool, waiting for the connections in use to be
// released.
func (db *DB) Close() { db.Pool.Close() }
