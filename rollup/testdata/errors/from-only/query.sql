SELECT count(*) FROM ONLY t
