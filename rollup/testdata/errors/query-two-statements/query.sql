SELECT count(*) FROM t; SELECT count(*) FROM u
