package server

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Token is one line of a token file: a caller's name, whether it is an
// admin, and the digest of its secret (never the secret itself).
type Token struct {
	// Name names the caller in logs, metrics and build records.
	Name string
	// Admin lets the caller see and watch every caller's builds.
	Admin bool

	digest [sha256.Size]byte
}

// validName reports whether name may be a token's name (it reaches logs
// and metric labels): 1 to 64 letters, digits and ._@-, starting with a
// letter or digit. Checked by hand rather than with a regexp, whose
// bounded repetition would be compiled at every start of the program.
func validName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && strings.IndexByte("._@-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// ParseTokens reads a token file. Each line is one of
//
//	TOKEN               a token; its caller is named token-XXXXXXXX (the
//	                    first 8 hex digits of the token's SHA-256)
//	NAME:TOKEN          a token of the caller NAME
//	NAME:TOKEN:admin    a token of NAME, who sees every caller's builds
//
// Blank lines and lines starting with # are skipped; a UTF-8 byte order
// mark, CRLF line ends and surrounding spaces are ignored. A token has no
// spaces and no colon; several tokens may share a name (one caller during
// a rotation), the same token may not appear twice. Errors name the line,
// never a token.
func ParseTokens(r io.Reader) ([]Token, error) {
	var out []Token
	seen := map[[sha256.Size]byte]int{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		t, err := parseToken(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if first, ok := seen[t.digest]; ok {
			return nil, fmt.Errorf("line %d: the same token as line %d", n, first)
		}
		seen[t.digest] = n
		out = append(out, t)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func parseToken(line string) (Token, error) {
	const want = "expected TOKEN, NAME:TOKEN or NAME:TOKEN:admin"
	if strings.ContainsAny(line, " \t") {
		return Token{}, errors.New("a token has no spaces (" + want + ")")
	}
	parts := strings.Split(line, ":")
	var t Token
	secret := parts[0]
	switch len(parts) {
	case 1:
	case 2, 3:
		t.Name, secret = parts[0], parts[1]
		if !validName(t.Name) {
			return Token{}, fmt.Errorf("name %q: expected letters, digits, '.', '_', '@' or '-', at most 64", t.Name)
		}
		if len(parts) == 3 {
			if parts[2] != "admin" {
				return Token{}, fmt.Errorf("role %q: the only role is admin (%s)", parts[2], want)
			}
			t.Admin = true
		}
	default:
		return Token{}, errors.New("too many colons (" + want + ")")
	}
	if secret == "" {
		return Token{}, errors.New("the token is empty (" + want + ")")
	}
	t.digest = sha256.Sum256([]byte(secret))
	if t.Name == "" {
		t.Name = "token-" + hex.EncodeToString(t.digest[:4])
	}
	return t, nil
}

// matchToken returns the token whose digest is the presented secret's.
// Every token is compared, over digests of one length, whatever matched
// before: the time taken says nothing about which token matched, how
// much of one, or how long any is.
func matchToken(tokens []Token, secret string) (Token, bool) {
	d := sha256.Sum256([]byte(secret))
	match := -1
	for i := range tokens {
		eq := subtle.ConstantTimeCompare(d[:], tokens[i].digest[:])
		match = subtle.ConstantTimeSelect(eq&boolInt(match < 0), i, match)
	}
	if match < 0 {
		return Token{}, false
	}
	return tokens[match], true
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TokenFile is a token file that is read again when it changes: a
// rotated Kubernetes Secret (a symlink swapped to a new file), a file
// replaced or rewritten in place. It is safe for concurrent use.
type TokenFile struct {
	path  string
	every time.Duration
	now   func() time.Time

	mu      sync.Mutex
	tokens  []Token
	err     error // of the last read; while set, no token is valid
	stat    os.FileInfo
	checked time.Time
}

// TokenFileOption configures a TokenFile.
type TokenFileOption func(*TokenFile) error

// WithCheckEvery sets how often the file is checked for a change (its
// inode, size and modification time, through symlinks), at most once per
// d and only when a call comes.
//
// The default is one second.
func WithCheckEvery(d time.Duration) TokenFileOption {
	return func(f *TokenFile) error {
		if d < 0 {
			return errors.New("check interval must not be negative")
		}
		f.every = d
		return nil
	}
}

// WithClock sets the clock the check interval is measured with.
//
// The default is time.Now.
func WithClock(now func() time.Time) TokenFileOption {
	return func(f *TokenFile) error {
		if now == nil {
			return errors.New("clock is nil")
		}
		f.now = now
		return nil
	}
}

// OpenTokenFile reads the token file at path. It fails when the file
// cannot be read, is not a valid token file, or holds no token.
func OpenTokenFile(path string, opts ...TokenFileOption) (*TokenFile, error) {
	f := &TokenFile{path: path, every: time.Second, now: time.Now}
	for _, opt := range opts {
		if err := opt(f); err != nil {
			return nil, fmt.Errorf("token-file %s: %w", path, err)
		}
	}
	if err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Reload reads the file now. When it cannot be read, is invalid or holds
// no token, the error is returned and every token is refused until a
// later read succeeds: a broken rotation locks callers out rather than
// keeping revoked tokens valid.
func (f *TokenFile) Reload() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checked = f.now()
	st, _ := os.Stat(f.path)
	f.stat = st
	f.tokens, f.err = readTokenFile(f.path)
	return f.err
}

func readTokenFile(path string) ([]Token, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("token-file: %w", err)
	}
	tokens, err := ParseTokens(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("token-file %s: %w", path, err)
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("token-file %s holds no token", path)
	}
	return tokens, nil
}

// current returns the tokens, reading the file again when the check
// interval passed and the file changed; changed is set when it was read
// (with the read's error).
func (f *TokenFile) current() (tokens []Token, changed bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	if now.Sub(f.checked) < f.every {
		return f.tokens, false, nil
	}
	f.checked = now
	st, serr := os.Stat(f.path)
	if serr != nil && f.stat == nil && f.err != nil {
		// Still missing: the failure was reported when it began.
		return nil, false, f.err
	}
	if serr == nil && f.stat != nil && os.SameFile(st, f.stat) && st.ModTime().Equal(f.stat.ModTime()) && st.Size() == f.stat.Size() {
		return f.tokens, false, nil
	}
	f.stat = st
	f.tokens, f.err = readTokenFile(f.path)
	return f.tokens, true, f.err
}
