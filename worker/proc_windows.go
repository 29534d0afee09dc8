//go:build windows

// Windows has no process groups to signal, no fork-time hooks and no
// descriptor passing, which running a playbook relies on, and Ansible's
// controller does not run there anyway. The package builds so that the
// client commands (submit, status, watch, tasks, cancel) work; whatever
// would run a playbook fails with errNoUnix.

package worker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"
)

var errNoUnix = errors.New("running playbooks needs a Unix system (Linux or macOS)")

// CanRunPlaybooks returns nil where the worker can run playbooks; on
// Windows it cannot.
func CanRunPlaybooks() error { return errNoUnix }

// Supervise only reports that there is no supervisor on Windows.
func Supervise(argv []string) int {
	fmt.Fprintln(os.Stderr, "ansible-worker "+SuperviseArg+":", errNoUnix)
	return 2
}

func procAttr(setpgid bool, parentDeath syscall.Signal) *syscall.SysProcAttr { return nil }

func kill(pid int, sig syscall.Signal) error { return errNoUnix }

func socketpair() ([2]int, error) { return [2]int{-1, -1}, errNoUnix }

func (sv *supervisor) run(j job, stdout *os.File, extra []*os.File) (int, error) { return 0, errNoUnix }

func (sv *supervisor) wait() (int, bool) { return -1, false }

func unixConn(f *os.File) (*net.UnixConn, error) { f.Close(); return nil, errNoUnix }

func lockFile(ctx context.Context, path string) (func(), error) { return nil, errNoUnix }

func owner(path string, fi fs.FileInfo) (uint32, error) { return 0, errNoUnix }
