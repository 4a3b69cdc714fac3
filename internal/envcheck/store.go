package envcheck

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Store kinds returned by ParseStore.
const (
	StoreSQLite   = "sqlite"
	StorePostgres = "postgres"
)

// ErrBadStore is returned (wrapped) for a store DSN scpgate cannot open.
var ErrBadStore = errors.New("unsupported store")

// libpqKey matches the start of a libpq keyword/value connection string
// ("host=db dbname=scpgate ...").
var libpqKey = regexp.MustCompile(`^\s*(host|hostaddr|port|dbname|user|password|sslmode|service|connect_timeout|application_name)\s*=`)

// ParseStore says which store dsn names and returns what to open:
//   - "sqlite:PATH" or a plain PATH ending in .db: SQLite at PATH;
//   - "postgres://..." or "postgresql://...", or a libpq keyword string
//     ("host=db dbname=scpgate"): PostgreSQL with dsn as it is.
//
// Anything else (mysql://x, a path without .db) is an error naming the
// accepted forms, so that a typo fails before anything connects.
func ParseStore(dsn string) (kind, target string, err error) {
	d := strings.TrimSpace(dsn)
	switch {
	case d == "":
		return "", "", fmt.Errorf("%w: no store given; set SCPGATE_DB or --db to sqlite:PATH or postgres://...", ErrBadStore)
	case strings.HasPrefix(d, "postgres://"), strings.HasPrefix(d, "postgresql://"):
		return StorePostgres, d, nil
	case libpqKey.MatchString(d):
		return StorePostgres, d, nil
	case strings.HasPrefix(d, "sqlite:"):
		path := strings.TrimPrefix(d, "sqlite:")
		path = strings.TrimPrefix(path, "//")
		if path == "" {
			return "", "", fmt.Errorf("%w: %q names no file; want sqlite:PATH", ErrBadStore, dsn)
		}
		return StoreSQLite, path, nil
	case !strings.Contains(d, "://") && strings.HasSuffix(d, ".db"):
		return StoreSQLite, d, nil
	}
	return "", "", fmt.Errorf("%w: %q; want sqlite:PATH, a file path ending in .db, postgres://... or a libpq keyword string (host=... dbname=...)", ErrBadStore, RedactDSN(dsn))
}

// libpqPassword matches the password of a libpq keyword string.
var libpqPassword = regexp.MustCompile(`(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// RedactDSN returns dsn with its password (in a URL or a libpq keyword
// string) replaced by "xxxxx", fit for logs.
func RedactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
			return u.String()
		}
		return dsn
	}
	return libpqPassword.ReplaceAllString(dsn, "${1}xxxxx")
}
