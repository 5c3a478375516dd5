// Package sqlname spells names for SQL drivers and statements: quoted
// identifiers and string literals, and SQLite file: URIs, shared by the
// sources and sinks packages.
package sqlname

import "strings"

// Quote quotes a table or column name as an SQL identifier (SQLite and
// standard SQL), so that a name from a flag or a job is only ever a name.
func Quote(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// Literal quotes s as an SQL string literal (SQLite and standard SQL, as
// PostgreSQL reads it with standard_conforming_strings on, its default),
// for the few statements that take no parameters.
func Literal(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// SQLiteURI is the file: URI of the SQLite database at path, with the
// characters a URI reserves escaped, followed by ?query.
func SQLiteURI(path, query string) string {
	return "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path) + "?" + query
}
