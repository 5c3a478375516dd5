SELECT k, count(*) FROM t
