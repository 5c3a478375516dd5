package pg

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// A TxHook is work that must commit in the same transaction as another
// package's, when both are in one database: a worker's task completes in
// the coordinator database in the transaction that applies the task's
// bucket to the sink, when the sink is that database (see coordinator).
// A transaction on another database (or whose search path resolves names
// to other tables, see Namespace) does not run it, and the hook's owner
// commits its work on its own afterwards.
type TxHook struct {
	// Namespace is the Namespace of the connection the hook's work
	// belongs to.
	Namespace string
	// Run does the work in tx; an error rolls tx back.
	Run func(ctx context.Context, tx pgx.Tx) error
}

type txHookKey struct{}

// WithTxHook returns ctx carrying h, for the transactions made under it.
func WithTxHook(ctx context.Context, h *TxHook) context.Context {
	return context.WithValue(ctx, txHookKey{}, h)
}

// TxHookFrom returns the hook that ctx carries, or nil.
func TxHookFrom(ctx context.Context) *TxHook {
	h, _ := ctx.Value(txHookKey{}).(*TxHook)
	return h
}

// Querier is what Namespace asks: a pool, a connection or a
// transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Namespace names where q's unqualified table names resolve: the
// database it is connected to, the same however it was reached (socket or
// TCP, any host name), through the server's start time (which no two
// servers, nor two starts of one, share in practice), its port and the
// database's oid; the schemas of its search path; and its role. Two
// connections with one Namespace see the same tables under the same
// names, with the same privileges.
func Namespace(ctx context.Context, q Querier) (string, error) {
	var id string
	err := q.QueryRow(ctx, `SELECT concat_ws('/', pg_postmaster_start_time(), current_setting('port'), d.oid, d.datname,
			array_to_string(current_schemas(false), ','), current_user)
		FROM pg_database d WHERE d.datname = current_database()`).Scan(&id)
	return id, err
}
