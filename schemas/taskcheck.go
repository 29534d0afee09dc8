package schemas

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// Bounds on the string fields of a task request, in characters. Every
// string a submitter sends is bounded, so no field makes Ansible (or the
// worker) spend long on it.
const (
	// MaxPathLength bounds playbook and inventory paths (Linux's PATH_MAX).
	MaxPathLength = 4096
	// MaxInlineInventoryLength bounds an inline host list.
	MaxInlineInventoryLength = 65536
	// MaxLimitLength bounds the limit host pattern.
	MaxLimitLength = 16384
	// MaxTagLength bounds one tag of tags or skip_tags.
	MaxTagLength = 256
	// MaxTags bounds the number of tags in tags and in skip_tags.
	MaxTags = 256
)

// inlineHost is one entry of an inline host list: a host name or IPv4
// address with an optional :port, a bracketed IPv6 address with an optional
// :port, or a bare IPv6 address. Nothing else: no space, no leading '-', no
// '=', nothing ssh or Ansible would read as an option or a variable.
var inlineHost = `(?:[A-Za-z0-9_][A-Za-z0-9_.-]*(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?|[0-9A-Fa-f]*:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*)`

var (
	inlineHostRE = lazyRegexp(`^` + inlineHost + `$`)
	varNameRE    = lazyRegexp(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// ValidVarName reports whether s is a variable name Ansible can use:
// letters, digits and _, not starting with a digit.
func ValidVarName(s string) bool { return varNameRE().MatchString(s) }

// checkLength refuses a string longer than max characters.
func checkLength(name, v string, max int) error {
	if n := utf8.RuneCountInString(v); n > max {
		return fmt.Errorf("%s is %d characters long, the limit is %d", name, n, max)
	}
	return nil
}

// checkPattern refuses what Ansible would read as more than a host pattern
// or a tag: "@FILE" makes it read FILE (and print its lines).
func checkPattern(name, v string) error {
	if strings.Contains(v, "@") {
		return fmt.Errorf("%s must not contain '@' (Ansible reads @FILE as a file of names): %q", name, truncate(v))
	}
	return nil
}

// checkInventory checks an inventory path or inline host list.
func checkInventory(v string) []string {
	if !strings.HasSuffix(v, ",") {
		if err := checkLength("inventory", v, MaxPathLength); err != nil {
			return []string{err.Error()}
		}
		return nil
	}
	if err := checkLength("inventory", v, MaxInlineInventoryLength); err != nil {
		return []string{err.Error()}
	}
	var bad []string
	for _, h := range strings.Split(strings.TrimSuffix(v, ","), ",") {
		if !inlineHostRE().MatchString(h) {
			bad = append(bad, fmt.Sprintf("%q", truncate(h)))
			if len(bad) == 3 {
				break
			}
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("inventory: an inline host list takes host names, IP addresses and host:port "+
		"separated by commas; not %s", strings.Join(bad, ", "))}
}

// checkVarNames refuses top-level extra vars that are not variable names:
// Ansible would take them silently, but no playbook could use them.
func checkVarNames(vars map[string]any) []string {
	var bad []string
	for k := range vars {
		if !varNameRE().MatchString(k) {
			bad = append(bad, fmt.Sprintf("%q", truncate(k)))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	if len(bad) > 3 {
		bad = append(bad[:3], "…")
	}
	return []string{fmt.Sprintf("extra_vars: %s is not a variable name (letters, digits and _, not starting with a digit)",
		strings.Join(bad, ", "))}
}

// firstErr returns the first error that is not nil: one problem per field.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// truncate shortens a value quoted in an error message.
func truncate(s string) string {
	const max = 80
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	return string([]rune(s)[:max]) + "…"
}
