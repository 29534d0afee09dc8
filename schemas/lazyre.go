package schemas

import (
	"regexp"
	"sync"
)

// lazyRegexp compiles expr on first use, not at package init: every
// ansible-worker process (a playbook's supervisor too) links this package,
// and compiling its expressions at start cost about 3 ms per process.
func lazyRegexp(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}
