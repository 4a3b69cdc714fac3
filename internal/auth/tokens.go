// Package auth holds what scpgate uses to decide who may do what: bearer
// tokens with scopes for the HTTP APIs (Authenticator), the allow-list of
// controller serials (AllowList), and a development CA that issues
// controller certificates per serial (DevCA). The check of a controller
// certificate against its serial is the driver's
// (driver.Options.RequireCertSerial).
package auth

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// Scope is a permission a token carries.
type Scope string

// Scopes of the HTTP APIs.
const (
	// ScopeEventsRead allows the queries of ingest: events, state,
	// results.
	ScopeEventsRead Scope = "events:read"
	// ScopeCommandsWrite allows submitting commands.
	ScopeCommandsWrite Scope = "commands:write"
	// ScopeCommandsRead allows reading commands and the controller list.
	ScopeCommandsRead Scope = "commands:read"
	// ScopeAdmin allows everything, the other scopes included.
	ScopeAdmin Scope = "admin"
)

// Scopes lists every scope, in documentation order.
var Scopes = []Scope{ScopeEventsRead, ScopeCommandsWrite, ScopeCommandsRead, ScopeAdmin}

// ErrBadTokens is wrapped by the errors of ParseTokens and LoadTokensFile.
var ErrBadTokens = errors.New("bad API token list")

// MinTokenLen is the shortest token accepted: shorter ones are guessable.
const MinTokenLen = 16

// token is one configured token. Only its SHA-256 is kept: every
// comparison is between two 32-byte digests, in constant time, so neither
// the content nor the length of a token leaks through timing.
type token struct {
	sum    [sha256.Size]byte
	scopes []Scope
}

// Tokens is a set of bearer tokens with their scopes. The zero value (no
// tokens) means the API is open. A Tokens is immutable and safe for
// concurrent use.
type Tokens struct {
	list []token
}

// Len returns the number of tokens.
func (t *Tokens) Len() int {
	if t == nil {
		return 0
	}
	return len(t.list)
}

// ParseTokens parses a token list: entries "token:scope1,scope2" separated
// by ';' or newlines. Blank entries and lines starting with '#' are
// skipped. A token is at least MinTokenLen characters of printable ASCII
// without ':', ';', ',' or spaces; every scope must be one of Scopes. The
// error never contains a token.
func ParseTokens(s string) (*Tokens, error) {
	t := &Tokens{}
	seen := make(map[[sha256.Size]byte]bool)
	n := 0
	for line := range strings.Lines(s) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for entry := range strings.SplitSeq(line, ";") {
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue
			}
			n++
			tok, err := parseEntry(entry)
			if err != nil {
				return nil, fmt.Errorf("%w: entry %d: %w", ErrBadTokens, n, err)
			}
			if seen[tok.sum] {
				return nil, fmt.Errorf("%w: entry %d: token given twice", ErrBadTokens, n)
			}
			seen[tok.sum] = true
			t.list = append(t.list, tok)
		}
	}
	return t, nil
}

func parseEntry(entry string) (token, error) {
	secret, scopeList, ok := strings.Cut(entry, ":")
	if !ok {
		return token{}, errors.New(`want "token:scope[,scope...]"`)
	}
	secret = strings.TrimSpace(secret)
	if len(secret) < MinTokenLen {
		return token{}, fmt.Errorf("token shorter than %d characters", MinTokenLen)
	}
	for i := 0; i < len(secret); i++ {
		if c := secret[i]; c <= ' ' || c > '~' || c == ',' {
			return token{}, errors.New("token with a space, a comma or a non-printable character")
		}
	}
	tok := token{sum: sha256.Sum256([]byte(secret))}
	for sc := range strings.SplitSeq(scopeList, ",") {
		sc = strings.TrimSpace(sc)
		if !slices.Contains(Scopes, Scope(sc)) {
			return token{}, fmt.Errorf("unknown scope %q (want one of %v)", sc, Scopes)
		}
		if !slices.Contains(tok.scopes, Scope(sc)) {
			tok.scopes = append(tok.scopes, Scope(sc))
		}
	}
	return tok, nil
}

// LoadTokensFile reads a token list from a file in the format of
// ParseTokens (typically one "token:scopes" per line).
func LoadTokensFile(path string) (*Tokens, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read API tokens file: %w", err)
	}
	t, err := ParseTokens(string(b))
	if err != nil {
		return nil, fmt.Errorf("API tokens file %s: %w", path, err)
	}
	return t, nil
}

// lookup returns the scopes of the token secret, or false when it is not
// configured. It compares the digest of secret with every configured one
// in constant time and does not stop at a match.
func (t *Tokens) lookup(secret string) ([]Scope, bool) {
	sum := sha256.Sum256([]byte(secret))
	var found []Scope
	match := 0
	for i := range t.list {
		eq := subtle.ConstantTimeCompare(sum[:], t.list[i].sum[:])
		if eq == 1 {
			found = t.list[i].scopes
		}
		match |= eq
	}
	return found, match == 1
}

// allows reports whether scopes grant want: admin grants everything.
func allows(scopes []Scope, want Scope) bool {
	return slices.Contains(scopes, want) || slices.Contains(scopes, ScopeAdmin)
}

// readLines returns the non-blank lines of a file without '#' comments.
func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out, sc.Err()
}
