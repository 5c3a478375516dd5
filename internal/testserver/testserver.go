// Package testserver holds what the test harnesses that start throwaway
// servers (internal/pgtest, internal/s3test) share: a free port, the tail
// of a server's log for messages, and the name of the test binary's
// package for the names of what they create.
package testserver

import (
	"bytes"
	"fmt"
	"net"
	"path/filepath"
	"strings"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Tail returns the last lines of a server's or a command's output, for
// error messages.
func Tail(out []byte) string {
	const max = 2000
	out = bytes.TrimSpace(out)
	if len(out) > max {
		out = out[len(out)-max:]
		if i := bytes.IndexByte(out, '\n'); i >= 0 {
			out = out[i+1:]
		}
	}
	return string(out)
}

// PackageName returns the package of the test binary arg0, lowercased,
// with every byte but a-z and 0-9 replaced by sep: "/tmp/go-build…/
// sources.test" gives "sources".
func PackageName(arg0 string, sep byte) string {
	name := strings.ToLower(filepath.Base(arg0))
	name = strings.TrimSuffix(name, ".exe")
	name = strings.TrimSuffix(name, ".test")
	var b strings.Builder
	for _, r := range name {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte(sep)
		}
	}
	return b.String()
}
