SELECT k, max_n(x, 0) AS top FROM t GROUP BY k
