SELECT date_trunc('mnth', created_at) AS month, count(*) FROM t GROUP BY 1
