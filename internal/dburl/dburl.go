// Package dburl tells which backend a --source or --sink string names, for
// sources.Open and sinks.Open, so that both read it alike. It is a package
// of its own, not part of internal/pg, because it decides between SQLite
// and PostgreSQL and names SQLite files too; what a PostgreSQL DSN means
// is internal/pg's.
package dburl

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/mrengine/mr/internal/pg"
)

// Kind is a backend.
type Kind int

const (
	Unknown  Kind = iota
	SQLite        // an SQLite file
	Postgres      // a PostgreSQL database
)

// Forms lists the strings Parse accepts, for messages.
const Forms = "use sqlite:PATH, a PATH ending in .db, postgres://USER@HOST/DB, or host=HOST dbname=DB"

// Parse returns the backend that s names and what to open:
//
//	sqlite:PATH                       SQLite, PATH
//	postgres://…, postgresql://…      Postgres, s
//	a key=value DSN (host=/tmp …)     Postgres, s
//	"" (the PG* environment decides)  Postgres, s
//	PATH ending in .db                SQLite, PATH
//
// Any other string is an error that, like every error of Parse, never
// quotes s, which may hold a password; it names the scheme of a URL of
// another kind.
func Parse(s string) (Kind, string, error) {
	scheme, rest, _ := strings.Cut(s, ":")
	switch {
	case scheme == "sqlite":
		if rest == "" {
			return Unknown, "", errors.New("sqlite: names no file: " + Forms)
		}
		return SQLite, rest, nil
	case s == "", pg.IsURL(s), keyValue(s):
		return Postgres, s, nil
	case strings.Contains(s, "://"):
		if !validScheme(scheme) {
			return Unknown, "", errors.New("unsupported URL: " + Forms)
		}
		return Unknown, "", fmt.Errorf("unsupported scheme %q: %s", scheme, Forms)
	case strings.HasSuffix(s, ".db"):
		return SQLite, s, nil
	}
	return Unknown, "", errors.New("not a database URL: " + Forms)
}

// keywords are libpq's connection keywords. A string is a key=value DSN
// when it starts with one of them and '=': a file named a=b.db stays a
// file.
var keywords = map[string]bool{
	"host": true, "hostaddr": true, "port": true, "dbname": true, "user": true, "password": true,
	"passfile": true, "service": true, "options": true, "application_name": true,
	"fallback_application_name": true, "connect_timeout": true, "client_encoding": true,
	"sslmode": true, "sslcert": true, "sslkey": true, "sslrootcert": true, "sslpassword": true,
	"sslnegotiation": true, "sslsni": true, "target_session_attrs": true, "channel_binding": true,
	"require_auth": true, "krbsrvname": true, "gssencmode": true, "keepalives": true,
	"min_protocol_version": true, "max_protocol_version": true, "search_path": true,
}

var firstKey = regexp.MustCompile(`^\s*([a-z_]+)\s*=`)

func keyValue(s string) bool {
	m := firstKey.FindStringSubmatch(s)
	return m != nil && keywords[m[1]]
}

var schemeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*$`)

func validScheme(s string) bool { return schemeRE.MatchString(s) }

// SQLiteName returns the canonical name of the SQLite file at path:
// "sqlite:" and the absolute, cleaned path, so that a file named two ways
// (a.db, ./a.db, sqlite:/abs/a.db) is one name and so one run id. Sources
// and sinks return it from String.
func SQLiteName(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return "sqlite:" + abs
	}
	return "sqlite:" + filepath.Clean(path)
}

// Open opens what s names, with sqlite(path) or postgres(dsn) as Parse
// tells: the one switch behind sources.Open and sinks.Open. An s that names
// neither gives Parse's error after pkg, the caller's package name.
func Open[T any](s, pkg string, sqlite, postgres func(string) (T, error)) (T, error) {
	kind, target, err := Parse(s)
	switch kind {
	case SQLite:
		return sqlite(target)
	case Postgres:
		return postgres(target)
	}
	var zero T
	return zero, fmt.Errorf("%s: %w", pkg, err)
}
