package eventgen

import (
	"context"
	"fmt"
	"iter"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Conn is what SeedPostgres needs of a database: a *pgx.Conn or a
// *pgxpool.Pool.
type Conn interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, rows pgx.CopyFromSource) (int64, error)
}

// SeedPostgres creates or replaces the events table (in the connection's
// search_path) and fills it with cfg's rows through COPY, then analyzes it
// unless analyze is false (a table without statistics tests the planner's
// sampling). Timestamps keep their instant; PostgreSQL stores them in UTC.
func SeedPostgres(ctx context.Context, conn Conn, cfg Config, analyze bool) error {
	for _, stmt := range []string{
		`DROP TABLE IF EXISTS events`,
		`CREATE TABLE events (id bigint PRIMARY KEY, account_id bigint, ts timestamptz,
			category text, amount_cents bigint, payload text)`,
		PostgresIsJSONObject,
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("seed events: %w", err)
		}
	}
	next, stop := iter.Pull(cfg.All())
	defer stop()
	_, err := conn.CopyFrom(ctx, pgx.Identifier{Table},
		[]string{"id", "account_id", "ts", "category", "amount_cents", "payload"},
		pgx.CopyFromFunc(func() ([]any, error) {
			e, ok := next()
			if !ok {
				return nil, nil
			}
			var payload any
			if e.Payload.Valid {
				payload = e.Payload.String
			}
			return []any{e.ID, e.AccountID, e.TS, e.Category, e.AmountCents, payload}, nil
		}))
	if err != nil {
		return fmt.Errorf("seed events: copy: %w", err)
	}
	if analyze {
		if _, err := conn.Exec(ctx, `ANALYZE events`); err != nil {
			return fmt.Errorf("seed events: analyze: %w", err)
		}
	}
	return nil
}

// PostgresIsJSONObject creates mr_is_json_object(text), which tells whether
// a payload parses as a JSON object (PostgreSQL 15 has no IS JSON OBJECT).
const PostgresIsJSONObject = `
	CREATE OR REPLACE FUNCTION mr_is_json_object(p text) RETURNS boolean
	LANGUAGE plpgsql IMMUTABLE AS $$
	BEGIN
		RETURN jsonb_typeof(p::jsonb) = 'object';
	EXCEPTION WHEN others THEN
		RETURN false;
	END $$`

// PostgresTruth is daily_rollup's output computed by PostgreSQL alone;
// it needs mr_is_json_object (see PostgresIsJSONObject).
const PostgresTruth = `
	SELECT account_id, (ts AT TIME ZONE 'UTC')::date AS day, category,
		count(*) AS events, sum(amount_cents)::bigint AS total_cents
	FROM events
	WHERE coalesce(mr_is_json_object(payload), false)
	GROUP BY 1, 2, 3`

// PostgresPoisonIDs selects, in order, the ids of the rows daily_rollup
// must fail.
const PostgresPoisonIDs = `
	SELECT id FROM events WHERE NOT coalesce(mr_is_json_object(payload), false) ORDER BY id`
