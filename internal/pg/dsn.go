package pg

import (
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mrengine/mr/internal/redact"
)

// IsURL reports whether dsn is in the URL form pgx parses as one: it starts
// with postgres:// or postgresql://. Every other string is key=value.
func IsURL(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// secretKeys are the DSN settings whose values are secrets.
var secretKeys = []string{"password", "sslpassword"}

// isSecretKey reports whether the DSN setting key holds a secret.
func isSecretKey(key string) bool { return slices.Contains(secretKeys, key) }

// Redact returns dsn fit to print, whatever it is: in a URL (of any scheme)
// the password of the user info and the values of password and sslpassword
// parameters become redact.Mask (xxxxx), the rest stays as written
// (redact.URL); in a key=value string the password and sslpassword values
// do. A URL that does not parse is shown as its scheme alone, a key=value
// string that does not parse up to its first "password", since where a
// secret ends cannot be told. A string that is neither (an SQLite path) is
// returned as it is.
//
//	postgres://u:secret@h/db?sslmode=disable  →  postgres://u:xxxxx@h/db?sslmode=disable
//	host=h password='a b' dbname=db           →  host=h password=xxxxx dbname=db
func Redact(dsn string) string {
	if scheme, _, ok := strings.Cut(dsn, "://"); ok {
		u, err := url.Parse(dsn)
		if err != nil {
			return scheme + "://…"
		}
		return redact.URL(u, isSecretKey)
	}
	settings, err := keyValues(dsn)
	if err != nil {
		if i := strings.Index(dsn, "password"); i >= 0 {
			return dsn[:i] + "password=" + redact.Mask + " …"
		}
		return dsn
	}
	var b strings.Builder
	last := 0
	for _, s := range settings {
		if isSecretKey(s.key) {
			b.WriteString(dsn[last:s.start] + redact.Mask)
			last = s.end
		}
	}
	b.WriteString(dsn[last:])
	return b.String()
}

// WithoutSecrets returns dsn with its passwords left out, as a place to
// store it that others read (a worker's task) must have it: the password
// of a URL's user info, password and sslpassword parameters and settings.
// Whoever connects with it gives the password as psql would, in
// PGPASSWORD or ~/.pgpass. A DSN that does not parse is an error, since
// where its secrets end cannot be told; one that is neither a URL nor
// key=value (an SQLite path) is returned as it is.
func WithoutSecrets(dsn string) (string, error) {
	if _, _, ok := strings.Cut(dsn, "://"); ok {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", parseError("a URL that does not parse: " + Redact(dsn))
		}
		if u.User != nil {
			u.User = url.User(u.User.Username())
		}
		q := u.Query()
		for _, k := range secretKeys {
			if q.Has(k) {
				q.Del(k)
				// libpq decodes only %XX in URLs, not '+' (and Encode
				// writes a literal '+' as %2B, so every '+' left is a space).
				u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
			}
		}
		return u.String(), nil
	}
	if !looksKeyValue(dsn) {
		return dsn, nil
	}
	settings, err := keyValues(dsn)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	last := 0
	for _, s := range settings {
		if isSecretKey(s.key) {
			b.WriteString(dsn[last:s.from])
			last = s.end
		}
	}
	b.WriteString(dsn[last:])
	return b.String(), nil
}

// setting is one key=value pair of a DSN, dsn[from:end]; its value is
// dsn[start:end] as written (quoted, escaped), value unescaped.
type setting struct {
	key, value       string
	from, start, end int
}

// kvSpace is what libpq counts as white space between settings.
const kvSpace = " \t\n\r\v\f"

// keyValues splits a key=value DSN the way libpq (and pgx) do: a keyword,
// optional spaces, '=', optional spaces, then a value that is either
// single-quoted or runs to the next space, backslash escaping the next
// character in both.
func keyValues(dsn string) ([]setting, error) {
	var out []setting
	i := 0
	skip := func() {
		for i < len(dsn) && strings.IndexByte(kvSpace, dsn[i]) >= 0 {
			i++
		}
	}
	for skip(); i < len(dsn); skip() {
		k := i
		for i < len(dsn) && dsn[i] != '=' && strings.IndexByte(kvSpace, dsn[i]) < 0 {
			i++
		}
		key := dsn[k:i]
		skip()
		if key == "" || i == len(dsn) || dsn[i] != '=' {
			return nil, errKeyValue
		}
		i++
		skip()
		s := setting{key: key, from: k, start: i}
		quoted := i < len(dsn) && dsn[i] == '\''
		if quoted {
			i++
		}
		var v strings.Builder
		for ; i < len(dsn); i++ {
			c := dsn[i]
			if quoted && c == '\'' || !quoted && strings.IndexByte(kvSpace, c) >= 0 {
				break
			}
			if c == '\\' {
				if i++; i == len(dsn) {
					break
				}
				c = dsn[i]
			}
			v.WriteByte(c)
		}
		if quoted {
			if i >= len(dsn) {
				return nil, errKeyValue
			}
			i++ // the closing quote
		}
		s.value, s.end = v.String(), min(i, len(dsn))
		out = append(out, s)
	}
	return out, nil
}

// errKeyValue is a DSN that keyValues cannot split; the reason does not
// matter, since pgx reports it in its own words.
var errKeyValue = parseError("not a key=value DSN")

type parseError string

func (e parseError) Error() string { return string(e) }

// Secrets returns the passwords that dsns hold, for Scrub: those written in
// them, in the user info or a password or sslpassword setting (also, best
// effort, in one that does not parse), and the one pgx resolves for them
// from PGPASSWORD or ~/.pgpass. Strings that hold none (SQLite paths)
// give none.
func Secrets(dsns ...string) []string {
	var out []string
	for _, dsn := range dsns {
		out = append(out, written(dsn)...)
		if dsn == "" || IsURL(dsn) || looksKeyValue(dsn) {
			if cfg, err := pgconn.ParseConfig(dsn); err == nil && cfg.Password != "" {
				out = append(out, cfg.Password)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// looksKeyValue reports whether dsn starts like a key=value DSN: a word,
// then '='.
var looksKeyValue = regexp.MustCompile(`^[` + kvSpace + `]*[A-Za-z_]+[` + kvSpace + `]*=`).MatchString

// urlSecret matches a password or sslpassword parameter of a URL, for
// URLs that do not parse.
var urlSecret = regexp.MustCompile(`[?&](?:ssl)?password=([^&#]*)`)

// kvSecret matches a password or sslpassword setting of a key=value DSN,
// quoted or not, for DSNs that keyValues cannot split.
var kvSecret = regexp.MustCompile(`password[` + kvSpace + `]*=[` + kvSpace + `]*('(?:[^'\\]|\\.)*'?|\S*)`)

// written returns the secrets written in dsn.
func written(dsn string) []string {
	var out []string
	add := func(s ...string) {
		for _, s := range s {
			if s != "" {
				out = append(out, s)
			}
		}
	}
	_, rest, isURL := strings.Cut(dsn, "://")
	if !isURL {
		settings, err := keyValues(dsn)
		if err != nil {
			for _, m := range kvSecret.FindAllStringSubmatch(dsn, -1) {
				add(m[1], strings.Trim(m[1], "'"))
			}
		}
		for _, s := range settings {
			if isSecretKey(s.key) {
				add(s.value)
			}
		}
		return out
	}
	if u, err := url.Parse(dsn); err == nil {
		return redact.URLSecrets(u, isSecretKey)
	}
	// The user info ends at the last '@' before the path (or, when the
	// password holds a '/', the last '@' of all); the password follows
	// the first ':' of it.
	authority := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority = rest[:i]
	}
	for _, a := range []string{authority, rest} {
		if i := strings.LastIndex(a, "@"); i >= 0 {
			if _, pw, ok := strings.Cut(a[:i], ":"); ok {
				dec, _ := url.PathUnescape(pw)
				add(pw, dec)
			}
		}
	}
	for _, m := range urlSecret.FindAllStringSubmatch(rest, -1) {
		dec, _ := url.QueryUnescape(m[1])
		add(m[1], dec)
	}
	return out
}

// Name returns the canonical name of the database cfg connects to:
//
//	postgres://USER@HOST:PORT/DATABASE
//	postgres://USER@/DATABASE?host=/run/postgresql&port=5432    (a unix socket)
//
// with every fallback host after the first (host=a,b), and then the
// settings that change what a run reads or writes: options and search_path,
// if set, in that order. It never holds the password, and leaves out what
// only changes how a run connects: pool_*, application_name,
// connect_timeout, sslmode and the like. The same database written as a
// URL or key=value, with settings in any order, has one name.
func Name(cfg *pgconn.Config) string {
	type addr struct {
		host string
		port uint16
	}
	addrs := []addr{{cfg.Host, cfg.Port}}
	for _, f := range cfg.Fallbacks {
		if a := (addr{f.Host, f.Port}); !slices.Contains(addrs, a) { // sslmode=prefer repeats each host
			addrs = append(addrs, a)
		}
	}
	socket := slices.ContainsFunc(addrs, func(a addr) bool { return isSocket(a.host) })
	var hosts, ports []string
	for _, a := range addrs {
		port := strconv.Itoa(int(a.port))
		if socket {
			hosts, ports = append(hosts, a.host), append(ports, port)
		} else {
			hosts = append(hosts, net.JoinHostPort(a.host, port))
		}
	}
	var b strings.Builder
	b.WriteString("postgres://")
	if cfg.User != "" {
		b.WriteString(url.User(cfg.User).String() + "@")
	}
	var query []string
	if socket {
		query = append(query, "host="+queryValue(strings.Join(hosts, ",")), "port="+strings.Join(ports, ","))
	} else {
		b.WriteString(strings.Join(hosts, ","))
	}
	b.WriteString("/" + url.PathEscape(cfg.Database))
	for _, k := range []string{"options", "search_path"} {
		if v, ok := cfg.RuntimeParams[k]; ok {
			query = append(query, k+"="+queryValue(v))
		}
	}
	if len(query) > 0 {
		b.WriteString("?" + strings.Join(query, "&"))
	}
	return b.String()
}

// queryValue escapes v for a query value that libpq and pgx read back as
// v, leaving '/' and ',' as they are for legibility. '=' stays escaped,
// since pgx, like libpq, refuses a second '=' in a parameter; and libpq
// decodes only %XX, not '+', so a space is %20.
func queryValue(v string) string {
	return strings.NewReplacer("+", "%20", "%2F", "/", "%2C", ",").Replace(url.QueryEscape(v))
}

// isSocket reports whether host is the directory of a unix socket.
func isSocket(host string) bool { return strings.HasPrefix(host, "/") }

// serverAddr names a server for messages: host:port, or the path of its
// unix socket.
func serverAddr(host string, port uint16) string {
	if isSocket(host) {
		return host + "/.s.PGSQL." + strconv.Itoa(int(port))
	}
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}
