// Package pg is the one home of mr's PostgreSQL connection logic, shared by
// the sources and sinks packages (and the CLI and the test harness for
// redaction), so that they agree on how a DSN is read, named, printed,
// connected to and retried.
//
// # DSNs
//
// A DSN is a postgres:// or postgresql:// URL or a libpq key=value string
// (host=/tmp dbname=app). Parse reads it with pgx's own parser, so the PG*
// environment variables, service files and ~/.pgpass fill in what it leaves
// out, as they do for psql.
//
// # Names
//
// Name gives the canonical name of a parsed DSN,
//
//	postgres://USER@HOST:PORT/DATABASE[?options=…&search_path=…]
//
// with only the settings that change what a run reads or writes. Sources
// and sinks return it from String, and the engine hashes it into the run
// id, so the same database written two ways is one run.
//
// # Secrets
//
// Redact makes any DSN, URL or key=value, parsable or not, fit to print;
// Secrets lists the passwords a DSN holds or resolves to (PGPASSWORD,
// ~/.pgpass), and Scrub removes them from an error's message, raw or
// escaped, keeping errors.Is and errors.As working. What URLs and errors
// of every kind share lives in internal/redact, which masks them all the
// same way; this package adds libpq's key=value form, DSNs that do not
// parse, and the passwords pgx resolves.
//
// # Connecting and faults
//
// Open builds the pool both backends use (see Open for its settings),
// pings it, and on failure says what to check. Transient classifies
// connection faults, Do retries through them with backoff and jitter within
// a budget, and DB.Retry turns a spent budget into an *UnavailableError,
// the one error shape of a server that stayed away: nothing is lost, and
// running the same command again resumes the run.
package pg
