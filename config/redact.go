package config

import (
	"cmp"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// minRedacted is the length under which a text from a ${VAR} is not
// masked in error messages, where it would garble words ("er" in
// "worker"). Secret fields are masked whatever their length.
const minRedacted = 4

// redactedError is an error whose message has a configuration's secrets
// masked; errors.Is and errors.As still see the original.
type redactedError struct {
	err error
	msg string
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redact returns err with every secret of c in its message masked (see
// redactText); nil stays nil.
func (c *Config) redact(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if clean := c.redactText(msg); clean != msg {
		return &redactedError{err: err, msg: clean}
	}
	return err
}

// urlInText finds what looks like a URL in a message.
var urlInText = regexp.MustCompile("[A-Za-z][A-Za-z0-9+.-]*://[^\\s\"'`]*")

// redactText masks in s the user info of every URL (c's servers, and
// anything that looks like a URL) and every text of c.secrets, as written
// and as %q writes it. A secret shorter than minRedacted is masked only
// where it is not part of a longer word.
func (c *Config) redactText(s string) string {
	for _, u := range c.NATS.Servers {
		if u != "" {
			s = strings.ReplaceAll(s, u, RedactURL(u))
		}
	}
	s = urlInText.ReplaceAllStringFunc(s, RedactURL)
	for _, v := range c.secrets() {
		forms := []string{v}
		if q := strconv.Quote(v); q[1:len(q)-1] != v {
			forms = append(forms, q[1:len(q)-1])
		}
		for _, f := range forms {
			if utf8.RuneCountInString(f) < minRedacted {
				s = replaceWord(s, f)
			} else {
				s = strings.ReplaceAll(s, f, SecretMask)
			}
		}
	}
	return s
}

// secrets returns the texts error messages must not contain, longest
// first: the secret fields, the header values and the URL secrets of c
// (whatever their length), and the texts from ${VAR} references of
// minRedacted characters or more.
func (c *Config) secrets() []string {
	var out []string
	for _, f := range c.secretFields() {
		out = append(out, *f)
	}
	out = append(out, slices.Collect(maps.Values(c.NATS.Headers))...)
	for _, u := range c.NATS.Servers {
		out = append(out, URLSecret(u))
	}
	for _, v := range c.expandedValues {
		if utf8.RuneCountInString(v) >= minRedacted {
			out = append(out, v)
		}
	}
	out = slices.DeleteFunc(out, func(s string) bool { return s == "" })
	slices.SortFunc(out, func(a, b string) int {
		return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(a, b))
	})
	return slices.Compact(out)
}

// replaceWord replaces old by SecretMask in s wherever it is not part of a
// longer word (letters, digits and '_' on either side).
func replaceWord(s, old string) string {
	word := func(i int) bool {
		if i < 0 || i >= len(s) {
			return false
		}
		ch := s[i]
		return ch == '_' || ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= 0x80
	}
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); {
		j := strings.Index(s[i:], old)
		if j < 0 {
			break
		}
		j += i
		end := j + len(old)
		if word(j-1) || word(end) {
			i = j + 1
			continue
		}
		b.WriteString(s[last:j])
		b.WriteString(SecretMask)
		last, i = end, end
	}
	b.WriteString(s[last:])
	return b.String()
}
