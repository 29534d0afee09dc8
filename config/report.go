package config

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
)

// report collects the problems of a configuration file, each at its line,
// so that they all come out at once, in the order of the file.
type report struct {
	file string
	// lines are the lines of the keys the file gives, by key
	// ("worker.concurrency", "nats.servers[0]").
	lines map[string]int
	// bad are the keys a problem was reported for: their value was
	// dropped, so validation says nothing more of them.
	bad      map[string]bool
	problems []lineProblem
}

// lineProblem is a problem at a line of the file (0: no line).
type lineProblem struct {
	line int
	err  error
}

func newReport(file string) *report {
	return &report{file: file, lines: map[string]int{}, bad: map[string]bool{}}
}

// line records that the file gives key at at line n (the first time).
func (r *report) line(at string, n int) {
	if _, ok := r.lines[at]; !ok {
		r.lines[at] = n
	}
}

// add records err, a problem of the value at key at (""; none), at line n.
func (r *report) add(n int, at string, err error) {
	if at != "" {
		r.bad[at] = true
	}
	r.problems = append(r.problems, lineProblem{line: n, err: fmt.Errorf("%s:%d: %w", r.file, n, err)})
}

// problemKey finds the key a validation message starts with; a message
// about two keys ("mqtt.tls_cert_file/mqtt.tls_key_file: ") gets the
// line of the first.
var problemKey = regexp.MustCompile(`^([A-Za-z0-9_.-]+)((?:\[\d+\])?)[: /]`)

// addValidation records the validation problems ps: each that starts with
// a key the file gives gets that key's line, and those of keys already
// reported are dropped (they are about a default put in place of a bad
// value).
func (r *report) addValidation(ps []error) {
	for _, err := range ps {
		m := problemKey.FindStringSubmatch(err.Error())
		if m == nil {
			r.problems = append(r.problems, lineProblem{err: err})
			continue
		}
		if r.covered(m[1] + m[2]) {
			continue
		}
		n, ok := r.lines[m[1]+m[2]]
		if !ok {
			n, ok = r.lines[m[1]]
		}
		if !ok {
			r.problems = append(r.problems, lineProblem{err: err})
			continue
		}
		r.problems = append(r.problems, lineProblem{line: n, err: fmt.Errorf("%s:%d: %w", r.file, n, err)})
	}
}

// covered reports whether a problem was reported for key at or for a
// value it is part of.
func (r *report) covered(at string) bool {
	for k := range r.bad {
		if within(at, k) {
			return true
		}
	}
	return false
}

// err joins the problems, those with a line first in the order of the
// file; nil when there are none.
func (r *report) err() error {
	ps := slices.Clone(r.problems)
	slices.SortStableFunc(ps, func(a, b lineProblem) int {
		return cmp.Compare(cmp.Or(a.line, 1<<30), cmp.Or(b.line, 1<<30))
	})
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p.err
	}
	return errors.Join(errs...)
}
