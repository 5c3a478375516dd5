SELECT count(*) FROM t WHERE x IS 5
