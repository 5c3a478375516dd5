SELECT count(*) WHERE x > 1 FROM t
