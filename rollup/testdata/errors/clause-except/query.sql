SELECT count(*) FROM t EXCEPT SELECT count(*) FROM u
