SELECT date_trunc('month', created_at) AS created_at, count(*) FROM orders GROUP BY created_at
