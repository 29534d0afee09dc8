//go:build !linux

package worker

import "testing"

// startModes: outside Linux every playbook starts cold.
var startModes = []bool{false}

// warmBundle is the warm start of Linux tests (warm_test.go).
type warmBundle struct{ warm *Warm }

// startWarm fails: warm starts need Linux.
func startWarm(t *testing.T, p *Process) *warmBundle {
	t.Helper()
	t.Fatal("warm starts need Linux")
	return nil
}

// benchWarm has no warm process to give outside Linux: the runs are cold.
func benchWarm(b *testing.B, p *Process) *Warm { return nil }
