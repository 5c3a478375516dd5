SELECT customer_id, date_trunc('month', created_at) AS month, count(*) AS orders FROM orders GROUP BY 1
