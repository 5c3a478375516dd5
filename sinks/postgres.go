package sinks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mrengine/mr/internal/pg"
	"github.com/mrengine/mr/mapreduce"
)

// Postgres is a Sink writing to a table of a PostgreSQL database through a
// pgx connection pool. It is safe for concurrent use: buckets applied in
// parallel each take a connection of their own.
//
// # Where the tables live
//
// A table name holding a dot is schema.table, split at the first dot;
// every other name is a table of current_schema(), the first existing
// schema of the connection's search_path, resolved once per Postgres. Each
// part is a quoted identifier, never pasted SQL. The commit table
// mr_bucket_commits and the owner table mr_table_owners (see OwnedError)
// live in the same schema as the output table; Committed
// reads the one next to the table last prepared (before any Prepare, the one
// in current_schema()).
//
// # Connection faults
//
// A transient fault (connection refused or reset, unexpected EOF, SQLSTATE
// class 08, 57P01/57P02/57P03) is retried with exponential backoff and
// jitter for up to RetryBudget, where a retry is safe: connecting, Prepare,
// Committed, and an Apply that failed before it read any row (a Merge
// before it loaded its first part). A database
// that stays away for the whole budget gives an *UnavailableError.
// mapreduce.OutputRows is a one-shot iterator and the sink keeps no copy of
// a bucket, so an Apply that loses its connection after reading rows rolls
// back and returns an error, wrapping the fault, that says the bucket was
// not applied; running the job again resumes with it. If the connection
// fails during COMMIT, Apply asks the database (within RetryBudget) whether
// the bucket was recorded: if so it succeeded, if not it was not applied;
// if the database cannot be asked, the error wraps ErrOutcomeUnknown and
// the next run learns the outcome from mr_bucket_commits. Once the sink
// knows the run (Claim, Stage, Swap), its sessions are named mr/<run id>
// in pg_stat_activity, unless the DSN sets application_name. Errors name the
// database as String does and never hold the password. Opening does not
// retry a refused connection (see pg.Open).
type Postgres struct {
	// RetryBudget bounds the time spent retrying one operation after
	// transient connection faults, counted from the first fault (see
	// pg.Transient); zero means no retries. OpenPostgres sets
	// DefaultRetryBudget. Set it before the sink is used.
	RetryBudget time.Duration

	db   *pg.DB
	pool *pgxpool.Pool // db.Pool

	mu struct {
		sync.Mutex
		schema  string // current_schema(), once resolved
		commits pgx.Identifier
	}
	// staged holds, by table name, the commit of each staging table that
	// Stage made or found (see Apply).
	staged sync.Map

	// commitFunc commits Apply's transaction; tests replace it to lose
	// the reply to a COMMIT.
	commitFunc func(ctx context.Context, tx pgx.Tx) error
}

var _ mapreduce.Sink = (*Postgres)(nil)

const (
	// DefaultRetryBudget is how long a Postgres from OpenPostgres retries
	// one operation after transient connection faults: long enough to
	// ride out a server restart or a failover, short enough that a server
	// that is really gone is reported while someone is still watching.
	DefaultRetryBudget = pg.DefaultBudget

	// postgresMaxConns sizes the pool unless the URL sets pool_max_conns:
	// the engine applies up to --workers buckets at once, each holding a
	// connection for its transaction; 8 keeps that many busy on a typical
	// machine without crowding a server's default max_connections (100)
	// when several mr processes share it.
	postgresMaxConns = 8

	// maxIdentifier is PostgreSQL's limit on the bytes of a name
	// (NAMEDATALEN - 1). Longer names are silently truncated, after which
	// the table could not be found again by its name.
	maxIdentifier = 63

	// prepareLockClass is the first key of the transaction-level advisory
	// lock Prepare holds ("mrsp"); the second is hashtext of the schema.
	// It serializes the CREATE TABLE IF NOT EXISTS of concurrent
	// processes, which otherwise can fail with a unique violation on
	// pg_type when both create the same table at the same moment.
	prepareLockClass = 0x6d727370

	// indexLockClass is the first key of the advisory lock under which a
	// staging table's indexes are built ("mrsi"); the second is hashtext
	// of the staging table's qualified name. A second build waits for the
	// first and then finds its indexes (see Swap).
	indexLockClass = 0x6d727369
)

// UnavailableError reports a PostgreSQL server that stayed unreachable for
// a whole RetryBudget (see pg.UnavailableError); sources.UnavailableError
// is the same type.
type UnavailableError = pg.UnavailableError

// ErrOutcomeUnknown marks an Apply whose COMMIT was sent but whose outcome
// could not be learnt: the bucket was applied and recorded, or neither. The
// next run reads mr_bucket_commits and applies the bucket only if it is not
// recorded there.
var ErrOutcomeUnknown = errors.New("commit outcome unknown")

// OpenPostgres opens a pool on the database dsn names (a postgres:// URL or
// a key=value DSN; the PG* environment variables and ~/.pgpass fill in the
// rest, as for psql) and pings it (see pg.Open). Close it when done.
func OpenPostgres(ctx context.Context, dsn string) (*Postgres, error) {
	db, err := pg.Open(ctx, dsn, pg.Options{MaxConns: postgresMaxConns})
	if err != nil {
		return nil, fmt.Errorf("sinks: %w", err)
	}
	return &Postgres{
		RetryBudget: DefaultRetryBudget,
		db:          db,
		pool:        db.Pool,
		commitFunc:  func(ctx context.Context, tx pgx.Tx) error { return tx.Commit(ctx) },
	}, nil
}

// Scope returns the search_path that an unqualified output table name
// resolves in, and whose first schema a new table goes to (see
// mapreduce.Scoper).
func (s *Postgres) Scope(ctx context.Context) (string, error) {
	return s.db.SearchPath(ctx, s.RetryBudget)
}

// NameRun names the sink's sessions mr/<run> in pg_stat_activity (see
// mapreduce.RunNamer).
func (s *Postgres) NameRun(run string) { s.db.NameRun(run) }

// Close closes the pool, waiting for connections in use to be released. It
// always returns nil; it has the error result of io.Closer.
func (s *Postgres) Close() error {
	s.pool.Close()
	return nil
}

// String returns the canonical name of the database (see pg.Name):
// postgres://USER@HOST:PORT/DATABASE plus search_path or options if set,
// never the password. It is part of a run's identity.
func (s *Postgres) String() string { return s.db.String() }

// retry calls op through pg's retries with RetryBudget: until it returns
// nil, an error that is not transient (see pg.Transient), or one wrapped by
// pg.Stop; or until RetryBudget, counted from the first fault, is spent,
// which gives an *UnavailableError. ctx ends the waiting too.
func (s *Postgres) retry(ctx context.Context, op func(ctx context.Context) error) error {
	return s.db.Retry(ctx, s.RetryBudget, op)
}

// postgresTypes are the column types of the field types.
var postgresTypes = map[mapreduce.Type]string{
	mapreduce.TypeInt64:     "bigint",
	mapreduce.TypeFloat64:   "double precision",
	mapreduce.TypeString:    "text",
	mapreduce.TypeBool:      "boolean",
	mapreduce.TypeDate:      "date",
	mapreduce.TypeTimestamp: "timestamptz",
	mapreduce.TypeDecimal:   "numeric",
	mapreduce.TypeBytes:     "bytea",
}

// postgresType is the column type of f: the one it names, else its
// type's, or an array of it.
func postgresType(f mapreduce.Field) string {
	if f.SQLType != "" {
		return f.SQLType
	}
	if f.Array {
		return postgresTypes[f.Type] + "[]"
	}
	return postgresTypes[f.Type]
}

// names are the qualified names of an output table, its commit table and
// its owner table.
type names struct {
	schema, table        string
	out, commits, owners pgx.Identifier
}

// checkTable checks what PostgreSQL needs of t before any SQL is written:
// key columns, known types, and names that fit an identifier.
func checkTable(t mapreduce.OutputTable) error {
	if len(t.Keys) == 0 {
		return fmt.Errorf("table %q has no key columns", t.Name)
	}
	for _, part := range strings.SplitN(t.Name, ".", 2) {
		if part == "" || len(part) > maxIdentifier {
			return fmt.Errorf("table name %q: schema and table names must be 1 to %d bytes", t.Name, maxIdentifier)
		}
	}
	for _, f := range slices.Concat(t.Keys, t.Values) {
		if _, ok := postgresTypes[f.Type]; !ok {
			return fmt.Errorf("column %q of table %q has unknown type %s", f.Name, t.Name, f.Type)
		}
		if f.Name == "" || len(f.Name) > maxIdentifier {
			return fmt.Errorf("column name %q of table %q must be 1 to %d bytes", f.Name, t.Name, maxIdentifier)
		}
	}
	return nil
}

// names resolves where t and its commit table live (see Postgres).
func (s *Postgres) names(ctx context.Context, t mapreduce.OutputTable) (names, error) {
	schema, table, qualified := strings.Cut(t.Name, ".")
	if !qualified {
		table = t.Name
		var err error
		if schema, err = s.currentSchema(ctx); err != nil {
			return names{}, err
		}
		if schema == "" {
			return names{}, errors.New("search_path names no existing schema: " +
				"qualify the table as schema.table, or set search_path (e.g. ?search_path=public in the URL)")
		}
	}
	return names{
		schema:  schema,
		table:   table,
		out:     pgx.Identifier{schema, table},
		commits: pgx.Identifier{schema, "mr_bucket_commits"},
		owners:  pgx.Identifier{schema, "mr_table_owners"},
	}, nil
}

// currentSchema returns current_schema(), or "" if search_path names no
// existing schema. It asks the database once; the answer is kept so that
// every table of a run resolves alike.
func (s *Postgres) currentSchema(ctx context.Context) (string, error) {
	s.mu.Lock()
	schema := s.mu.schema
	s.mu.Unlock()
	if schema != "" {
		return schema, nil
	}
	var current *string
	err := s.retry(ctx, func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, "SELECT current_schema()").Scan(&current)
	})
	if err != nil || current == nil {
		return "", err
	}
	s.mu.Lock()
	s.mu.schema = *current
	s.mu.Unlock()
	return *current, nil
}

// Prepare creates t's table if it is missing, with a primary key on its key
// columns, and the commit table next to it (see Postgres). It checks that
// an existing table has every column of t and a primary key or unique index
// on exactly its keys. Concurrent calls, from this or other processes, take
// turns on an advisory lock.
func (s *Postgres) Prepare(ctx context.Context, t mapreduce.OutputTable) error {
	if err := checkTable(t); err != nil {
		return fmt.Errorf("sinks: %s: %w", s, err)
	}
	fail := func(err error) error {
		return s.db.Scrub(fmt.Errorf("sinks: prepare table %q in %s: %w", t.Name, s, err))
	}
	n, err := s.names(ctx, t)
	if err != nil {
		return fail(err)
	}
	var problem error // what check found: the table cannot take t's rows
	err = s.retry(ctx, func(ctx context.Context) error {
		problem = nil
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext($2))", prepareLockClass, n.schema); err != nil {
				return err
			}
			oid, err := relation(ctx, tx, n.schema, n.table)
			if err != nil {
				return err
			}
			if oid == 0 {
				if _, err := tx.Exec(ctx, createPostgresSQL(t, n.out)); err != nil {
					return err
				}
				if oid, err = relation(ctx, tx, n.schema, n.table); err != nil {
					return err
				}
			}
			if err := prepareLedger(ctx, tx, n); err != nil {
				return err
			}
			problem, err = s.check(ctx, tx, t, n, oid)
			return err
		})
	})
	if err != nil {
		return fail(err)
	}
	if problem != nil {
		return problem
	}
	s.mu.Lock()
	s.mu.commits = n.commits
	s.mu.Unlock()
	return nil
}

// relation returns the oid of the table schema.name, or 0 if there is none.
// Checking first lets Prepare run without the CREATE privilege on a schema
// whose tables exist.
func relation(ctx context.Context, tx pgx.Tx, schema, name string) (uint32, error) {
	var oid uint32
	err := tx.QueryRow(ctx, `SELECT c.oid FROM pg_catalog.pg_class c
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2`, schema, name).Scan(&oid)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return oid, err
}

func createPostgresSQL(t mapreduce.OutputTable, out pgx.Identifier) string {
	var cols, keys []string
	for i, f := range slices.Concat(t.Keys, t.Values) {
		def := ident(f.Name) + " " + postgresType(f)
		if i < len(t.Keys) {
			def += " NOT NULL"
			keys = append(keys, ident(f.Name))
		}
		cols = append(cols, def)
	}
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (%s, PRIMARY KEY (%s))",
		out.Sanitize(), strings.Join(cols, ", "), strings.Join(keys, ", "))
}

// prepareLedger creates the commit table and the owner table of n's
// schema if they are missing, and adds table_oid to a commit table made by
// an mr that did not record it. Its rows have table_oid NULL, which
// Committed does not count: a bucket recorded before is applied again
// (once), since nothing says which table it went to.
//
// table_oid is the pg_class oid of the table a bucket (or a step, see
// stageBucket) was applied to, which ties the record to that table: a
// table dropped, or dropped and created again, has no relation of that oid
// any more, so its buckets no longer count as committed and are applied
// again. A rename keeps the oid, so the swap keeps the buckets of the
// staging table that becomes the output table.
func prepareLedger(ctx context.Context, tx pgx.Tx, n names) error {
	commits, err := relation(ctx, tx, n.schema, "mr_bucket_commits")
	if err != nil {
		return err
	}
	if commits == 0 {
		if _, err := tx.Exec(ctx, "CREATE TABLE "+n.commits.Sanitize()+` (
			commit_key text, bucket int, "rows" bigint, committed_at timestamptz DEFAULT now(), table_oid oid,
			PRIMARY KEY (commit_key, bucket))`); err != nil {
			return err
		}
	} else {
		var tied bool
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_catalog.pg_attribute
			WHERE attrelid = $1 AND attname = 'table_oid' AND NOT attisdropped)`, commits).Scan(&tied)
		if err != nil {
			return err
		}
		if !tied {
			if _, err := tx.Exec(ctx, "ALTER TABLE "+n.commits.Sanitize()+" ADD COLUMN table_oid oid"); err != nil {
				return err
			}
		}
	}
	owners, err := relation(ctx, tx, n.schema, "mr_table_owners")
	if err != nil || owners != 0 {
		return err
	}
	_, err = tx.Exec(ctx, "CREATE TABLE "+n.owners.Sanitize()+` (
		table_name text PRIMARY KEY, run text NOT NULL, commit_key text NOT NULL, claimed_at timestamptz NOT NULL DEFAULT now())`)
	return err
}

// check returns an error naming what the table oid lacks to take t's rows:
// a column of t, a column type that holds every value of its field (see
// checkTypes), or a unique index on exactly the key columns that ON
// CONFLICT can use (immediate, valid, not partial, no expressions; INCLUDE
// columns do not count). Names match exactly, as quoted identifiers do.
func (s *Postgres) check(ctx context.Context, tx pgx.Tx, t mapreduce.OutputTable, n names, oid uint32) (problem, err error) {
	rows, err := tx.Query(ctx, `SELECT attname::text, atttypid, atttypmod, format_type(atttypid, atttypmod) FROM pg_catalog.pg_attribute
		WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped`, oid)
	if err != nil {
		return nil, err
	}
	cols := map[string]pgColumnType{}
	var name string
	var typ pgColumnType
	if _, err := pgx.ForEachRow(rows, []any{&name, &typ.oid, &typ.mod, &typ.name}, func() error {
		cols[name] = typ
		return nil
	}); err != nil {
		return nil, err
	}
	var missing, alter []string
	for _, f := range slices.Concat(t.Keys, t.Values) {
		if _, ok := cols[f.Name]; !ok {
			missing = append(missing, fmt.Sprintf("%q", f.Name))
			alter = append(alter, fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", n.out.Sanitize(), ident(f.Name), postgresType(f)))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("sinks: table %q in %s lacks columns %s: add them (%s) or drop the table so that mr creates it",
			t.Name, s, strings.Join(missing, ", "), strings.Join(alter, "; ")), nil
	}
	if problem, err := s.checkTypes(ctx, tx, t, n, cols); problem != nil || err != nil {
		return problem, err
	}

	rows, err = tx.Query(ctx, `SELECT array_agg(a.attname::text)
		FROM pg_catalog.pg_index i
		CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
		JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
		WHERE i.indrelid = $1 AND i.indisunique AND i.indimmediate AND i.indisvalid
			AND i.indpred IS NULL AND i.indexprs IS NULL AND k.n <= i.indnkeyatts
		GROUP BY i.indexrelid`, oid)
	if err != nil {
		return nil, err
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[[]string])
	if err != nil {
		return nil, err
	}
	want, quoted := make([]string, len(t.Keys)), make([]string, len(t.Keys))
	for i, f := range t.Keys {
		want[i], quoted[i] = f.Name, ident(f.Name)
	}
	slices.Sort(want)
	for _, key := range keys {
		slices.Sort(key)
		if slices.Equal(key, want) {
			return nil, nil
		}
	}
	return fmt.Errorf("sinks: table %q in %s has no primary key or unique index on exactly (%s), which upserts need: "+
		"add one (CREATE UNIQUE INDEX %s ON %s (%s)) or drop the table so that mr creates it",
		t.Name, s, strings.Join(quoted, ", "), ident(n.table+"_key"), n.out.Sanitize(), strings.Join(quoted, ", ")), nil
}

// Committed returns the buckets recorded under commit, in order, from the
// commit table next to the table last prepared (before any Prepare, the
// one in current_schema()), that went to a table that still exists: one
// dropped since, or dropped and created again, took them with it (see
// prepareLedger). A database never prepared has none.
func (s *Postgres) Committed(ctx context.Context, commit string) ([]int, error) {
	fail := func(err error) error {
		return s.db.Scrub(fmt.Errorf("sinks: read the commits of %q in %s: %w", commit, s, err))
	}
	s.mu.Lock()
	commits := s.mu.commits
	s.mu.Unlock()
	if commits == nil {
		schema, err := s.currentSchema(ctx)
		if err != nil {
			return nil, fail(err)
		}
		if schema == "" {
			return nil, nil
		}
		commits = pgx.Identifier{schema, "mr_bucket_commits"}
	}
	var buckets []int
	err := s.retry(ctx, func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, "SELECT b.bucket FROM "+commits.Sanitize()+` b
			JOIN pg_catalog.pg_class c ON c.oid = b.table_oid AND c.relkind IN ('r', 'p')
			JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace AND n.nspname = $2
			WHERE b.commit_key = $1 AND b.bucket >= 0 ORDER BY b.bucket`, commit, commits[0])
		if err != nil {
			return err
		}
		buckets, err = pgx.CollectRows(rows, pgx.RowTo[int])
		return err
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "3F000") { // undefined table or schema
		return nil, nil
	}
	if err != nil {
		return nil, fail(err)
	}
	return buckets, nil
}

// ident quotes one name as an SQL identifier.
func ident(name string) string { return pgx.Identifier{name}.Sanitize() }
