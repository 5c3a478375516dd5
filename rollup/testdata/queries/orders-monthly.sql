SELECT customer_id, date_trunc('month', created_at) AS month, count(*) AS orders, sum(total) AS total,
       approx_count_distinct(status) AS statuses, approx_quantile(total, 0.99) AS p99
FROM orders WHERE status <> 'void' GROUP BY 1, 2
