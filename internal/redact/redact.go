package redact

import (
	"cmp"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Mask replaces every secret. It is what net/url's URL.Redacted writes for
// a password, so a URL reads the same whichever of them redacted it.
const Mask = "xxxxx"

// URL returns u fit to print: the password of its user info becomes Mask,
// and so does the value of each query parameter whose key, unescaped,
// secret reports true for (every parameter with a value if secret is
// nil). Everything else stays as written.
//
//	URL(postgres://u:pw@h/db?sslmode=disable&password=pw, isPassword) → postgres://u:xxxxx@h/db?sslmode=disable&password=xxxxx
//	URL(s3://bucket/dir?region=eu&token=t, nil)                       → s3://bucket/dir?region=xxxxx&token=xxxxx
func URL(u *url.URL, secret func(key string) bool) string {
	c := *u
	if c.RawQuery != "" {
		pairs := strings.Split(c.RawQuery, "&")
		for i, p := range pairs {
			k, _, hasValue := strings.Cut(p, "=")
			if key, err := url.QueryUnescape(k); secret == nil && hasValue || secret != nil && err == nil && secret(key) {
				pairs[i] = k + "=" + Mask
			}
		}
		c.RawQuery = strings.Join(pairs, "&")
	}
	return c.Redacted()
}

// URLSecrets returns the secrets in u that URL masks, unescaped: the
// password of its user info and the values of the query parameters that
// secret picks (all, if nil). They are for Error, when a message may quote
// u.
func URLSecrets(u *url.URL, secret func(key string) bool) []string {
	var out []string
	if pw, ok := u.User.Password(); ok && pw != "" {
		out = append(out, pw)
	}
	for k, vs := range u.Query() {
		if secret == nil || secret(k) {
			for _, v := range vs {
				if v != "" {
					out = append(out, v)
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Error returns err with every secret in its message replaced by Mask, in
// each form a message may quote it: as it is, query-escaped, path-escaped,
// and escaped as %q writes it. errors.Is and errors.As see through the
// result. Empty secrets are ignored; an error whose message holds none is
// returned as it is, and nil stays nil.
func Error(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	var forms []string
	for _, s := range secrets {
		if s != "" {
			quoted := strconv.Quote(s)
			forms = append(forms, s, url.QueryEscape(s), url.PathEscape(s), quoted[1:len(quoted)-1])
		}
	}
	// Longest first, so that a secret holding another is replaced whole.
	slices.SortFunc(forms, func(a, b string) int { return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(a, b)) })
	msg := err.Error()
	masked := msg
	for _, f := range slices.Compact(forms) {
		masked = strings.ReplaceAll(masked, f, Mask)
	}
	if masked == msg {
		return err
	}
	return &maskedError{err: err, msg: masked}
}

// maskedError is an error whose message had secrets masked.
type maskedError struct {
	err error
	msg string
}

func (e *maskedError) Error() string { return e.msg }
func (e *maskedError) Unwrap() error { return e.err }
