package sinks

import (
	"context"

	"github.com/mrengine/mr/internal/dburl"
	"github.com/mrengine/mr/mapreduce"
)

// Open returns the sink a URL names (the --sink flag):
//
//	sqlite:PATH, or a PATH ending in .db    an SQLite database, created if missing
//	postgres://… or postgresql://…, or      a PostgreSQL database (see Postgres)
//	a key=value DSN (host=… dbname=…)
//
// ctx bounds connecting to a database server. The sink is an io.Closer;
// close it when done. Its errors never quote url, which may hold a
// password.
func Open(ctx context.Context, url string) (mapreduce.Sink, error) {
	return dburl.Open(url, "sinks",
		func(path string) (mapreduce.Sink, error) { return sink(OpenSQLite(path)) },
		func(dsn string) (mapreduce.Sink, error) { return sink(OpenPostgres(ctx, dsn)) })
}

// sink returns s as a Sink, or nil if err is set: never a nil pointer in a
// non-nil interface.
func sink[S mapreduce.Sink](s S, err error) (mapreduce.Sink, error) {
	if err != nil {
		return nil, err
	}
	return s, nil
}
