-- The built-in job daily_rollup as a rollup (payload checks aside).
SELECT account_id,
       date_trunc('day', ts, 'UTC') AS day,
       category,
       count(*) AS events,
       sum(amount_cents) AS total_cents
FROM events
GROUP BY account_id, day, category;
