WITH o AS (SELECT * FROM orders) SELECT k, count(*) FROM o GROUP BY k
