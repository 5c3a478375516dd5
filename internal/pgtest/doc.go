// Package pgtest gives tests a real, throwaway PostgreSQL, the way river's
// riverdbtest does: one cluster per test binary, one fresh schema per test.
//
// # The cluster
//
// The first call of any helper starts the cluster, once per test binary:
//
//   - If MR_TEST_DSN is set, pgtest uses that server. The DSN's role must be
//     able to CREATE SCHEMA in its database; use a database reserved for
//     tests.
//   - Otherwise pgtest runs initdb into a fresh directory
//     $TMPDIR/mr-pgtest-<pid>-<random> and starts postgres on 127.0.0.1 at a
//     free port, with its unix socket in that same private directory, and
//     fsync, synchronous_commit and full_page_writes off: nothing in it
//     outlives the binary, so durability only costs time. With
//     MR_TEST_DURABLE set they stay on, as a production server has them,
//     for benchmarks. The server
//     binaries are looked for in $MR_TEST_PGBIN, $PATH, `pg_config
//     --bindir` and the usual install directories. PostgreSQL refuses to
//     run as root, so under root initdb and postgres run as the OS user
//     "postgres".
//
// If neither works, every helper skips the test with a message that says
// what was tried and how to fix it; under CI=true it fails the test
// instead, so CI never goes green by skipping.
//
// A package whose tests use pgtest calls Main from its TestMain, which stops
// the cluster and removes its directory after the tests:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// Nothing leaks forever without it either. On Linux the postmaster gets
// SIGQUIT (immediate shutdown) as soon as the test binary dies, even by
// kill -9. Each directory carries a lock file that its test binary holds
// (flock) while it lives, and the next start anywhere on the machine stops
// the postmaster of, and removes, every mr-pgtest-* directory whose lock is
// free and whose owner pid is gone (or which is older than a minute).
//
// # Schemas and search_path
//
// Schema gives each test a fresh schema named <pkg>_<run>_<n>: pkg comes
// from the test binary's name, run is a random token of 8 hex digits per
// test binary and n counts schemas within it, e.g. "sources_1f0c9a2e_7".
// It is dropped (CASCADE) in t.Cleanup.
//
// The DSN that comes with it sets search_path to that schema alone
// (options=-c search_path=<schema>), so unqualified names land in, and
// resolve from, the test's schema. House style wants pools with an empty
// search_path, so that an unqualified name fails; tests deliberately differ:
// the engine's tests hand a DSN to `mr run --source postgres://…` and must
// find the tables they seeded without qualifying every name, and two tests
// running in parallel must not see each other's tables. Pinning the path to
// one schema gives both. AdminDSN is the exception: the cluster's superuser
// DSN, with the server's default search_path, for the rare test that needs
// roles or databases.
//
// With MR_TEST_DSN, schemas may outlive a test binary that was killed. Each
// binary holds a session advisory lock on its run token for its whole life
// and comments its schemas with that token; the next binary to start drops
// the schemas of every token whose lock is free.
//
// # Other helpers
//
// Tx gives a transaction rolled back in t.Cleanup, for tests that never
// commit; it runs in a fresh schema created inside the transaction, so the
// rollback removes that too. Restart restarts the cluster for
// connection-fault tests, and PasswordDSN connects over TCP as a role that
// must give a password (scram-sha-256) so that a wrong password can be
// tested. Both need the cluster pgtest starts itself and skip under
// MR_TEST_DSN.
package pgtest
