SELECT o.k, count(*) FROM orders o LEFT JOIN customers c USING (id) GROUP BY 1
