package eventgen

// The ground truth of the built-in job daily_rollup over seeded events,
// computed by the database alone, for tests to compare the engine's output
// with. A row counts when its payload is a JSON object.

// SQLiteTruth is daily_rollup's output computed by SQLite. date(ts) turns
// RFC 3339 text with an offset into the UTC day; json_type is guarded by
// json_valid because it fails on malformed JSON.
const SQLiteTruth = `
	SELECT account_id, date(ts) AS day, category, count(*) AS events, sum(amount_cents) AS total_cents
	FROM events
	WHERE CASE WHEN json_valid(payload) THEN json_type(payload) = 'object' ELSE 0 END
	GROUP BY account_id, date(ts), category`

// SQLitePoisonIDs selects, in order, the ids of the rows daily_rollup must
// fail: NULL, malformed or non-object payloads.
const SQLitePoisonIDs = `
	SELECT id FROM events
	WHERE NOT coalesce(CASE WHEN json_valid(payload) THEN json_type(payload) = 'object' ELSE 0 END, 0)
	ORDER BY id`
