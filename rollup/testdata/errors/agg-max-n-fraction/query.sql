SELECT k, min_n(x, 2.5) AS bottom FROM t GROUP BY k
