SELECT k, count(*) FROM t GROUP BY k UNION SELECT k, count(*) FROM u GROUP BY k
