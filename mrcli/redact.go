package mrcli

import (
	"net/url"
	"strings"
)

// redact returns a source or sink URL fit to print: its password, in the
// user info or in a password query parameter, replaced by "xxxxx".
// Strings that are not URLs with a scheme (SQLite paths) are returned as
// they are.
//
//	postgres://user:secret@host/db  →  postgres://user:xxxxx@host/db
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || !strings.Contains(raw, "://") {
		return raw
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// secrets returns the passwords that the URLs hold, to scrub from errors.
func secrets(urls ...string) []string {
	var s []string
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			continue
		}
		if p, ok := u.User.Password(); ok && p != "" {
			s = append(s, p)
		}
		if p := u.Query().Get("password"); p != "" {
			s = append(s, p)
		}
	}
	return s
}

// redactError returns err with every password of urls replaced in its
// message, so that a backend quoting its URL in an error cannot leak one.
// errors.Is and errors.As see through it.
func redactError(err error, urls ...string) error {
	s := secrets(urls...)
	if err == nil || len(s) == 0 {
		return err
	}
	return &redactedError{err: err, secrets: s}
}

type redactedError struct {
	err     error
	secrets []string
}

func (e *redactedError) Error() string {
	msg := e.err.Error()
	for _, s := range e.secrets {
		msg = strings.ReplaceAll(msg, s, "xxxxx")
		if esc := url.QueryEscape(s); esc != s {
			msg = strings.ReplaceAll(msg, esc, "xxxxx")
		}
		if esc := url.PathEscape(s); esc != s {
			msg = strings.ReplaceAll(msg, esc, "xxxxx")
		}
	}
	return msg
}

func (e *redactedError) Unwrap() error { return e.err }
