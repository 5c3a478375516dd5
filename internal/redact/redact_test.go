package redact_test

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/mrengine/mr/internal/redact"
)

func isPassword(key string) bool { return key == "password" || key == "sslpassword" }

func TestURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url    string
		secret func(string) bool
		want   string
	}{
		{"postgres://u:pw@h/db?sslmode=disable&password=pw", isPassword, "postgres://u:xxxxx@h/db?sslmode=disable&password=xxxxx"},
		// Keys are matched unescaped, and everything else stays as written.
		{"postgres://u@h/d%20b?ssl%70assword=a%26b&application_name=a%20b", isPassword, "postgres://u@h/d%20b?ssl%70assword=xxxxx&application_name=a%20b"},
		{"postgres://h/db?password", isPassword, "postgres://h/db?password=xxxxx"},
		// nil: every value.
		{"s3://AKIA:s3cr3t@bucket/dir?region=eu&token=t&flag", nil, "s3://AKIA:xxxxx@bucket/dir?region=xxxxx&token=xxxxx&flag"},
		{"s3://bucket/dir", nil, "s3://bucket/dir"},
	} {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := redact.URL(u, tc.secret); got != tc.want {
			t.Errorf("URL(%s) = %s, want %s", tc.url, got, tc.want)
		}
		if u.String() != tc.url {
			t.Errorf("URL changed its argument to %s", u)
		}
	}
}

func TestURLSecrets(t *testing.T) {
	t.Parallel()
	u, err := url.Parse("postgres://u:p%40ss@h/db?password=a%26b&sslmode=disable&sslpassword=&password=p@ss")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := redact.URLSecrets(u, isPassword), []string{"a&b", "p@ss"}; !slices.Equal(got, want) {
		t.Errorf("URLSecrets(isPassword) = %q, want %q", got, want)
	}
	if got, want := redact.URLSecrets(u, nil), []string{"a&b", "disable", "p@ss"}; !slices.Equal(got, want) {
		t.Errorf("URLSecrets(nil) = %q, want %q", got, want)
	}
}

type codeError struct{ code int }

func (e *codeError) Error() string { return fmt.Sprintf("code %d", e.code) }

func TestError(t *testing.T) {
	t.Parallel()
	base := &codeError{7}
	const secret = `s3 cr/t"`
	err := fmt.Errorf("connect postgres://u:%s@h/db?password=%s as %s in %q: %w",
		url.PathEscape(secret), url.QueryEscape(secret), secret, "dsn "+secret, base)
	masked := redact.Error(fmt.Errorf("outer: %w", err), "", secret, "unused")
	if msg := masked.Error(); msg != `outer: connect postgres://u:xxxxx@h/db?password=xxxxx as xxxxx in "dsn xxxxx": code 7` {
		t.Errorf("Error: %q", msg)
	}
	wrapped := fmt.Errorf("again: %w", masked)
	var ce *codeError
	if !errors.Is(wrapped, base) || !errors.As(wrapped, &ce) || ce.code != 7 {
		t.Errorf("errors.Is/As do not see through Error: %v", wrapped)
	}
	if strings.Contains(wrapped.Error(), "cr/t") {
		t.Errorf("wrapped again: %v", wrapped)
	}

	// An error without the secret is the error itself.
	if got := redact.Error(io.EOF, secret); got != io.EOF {
		t.Errorf("Error(io.EOF) = %#v", got)
	}
	if got := redact.Error(nil, secret); got != nil {
		t.Errorf("Error(nil) = %v", got)
	}
	// A secret that holds another is replaced whole.
	if got := redact.Error(errors.New("pw abcabc"), "abc", "abcabc").Error(); got != "pw xxxxx" {
		t.Errorf("Error of nested secrets: %q", got)
	}
}
