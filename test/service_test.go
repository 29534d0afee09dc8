package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/config"
)

const (
	unitFile    = "../examples/systemd/ansible-worker.service"
	unitBinary  = "/usr/local/bin/ansible-worker"
	unitConfig  = "../examples/systemd/config.yaml"
	unitDefault = "../examples/systemd/ansible-worker.default"
)

// verifyUnit runs `systemd-analyze verify` on the unit text, saved as
// ansible-worker.service, and returns its output and whether it passed.
// It needs no running systemd (this test runs in containers without one).
func verifyUnit(t *testing.T, text string) (string, bool) {
	t.Helper()
	sa, err := exec.LookPath("systemd-analyze")
	require.NoError(t, err, "systemd-analyze is missing: install Debian's systemd package (scripts/test.sh does)")
	help, _ := exec.Command(sa, "--help").CombinedOutput()
	args := []string{"verify", "--man=no"}
	// Not in every version: no generators (they need a booted system), and
	// errors of the units it depends on do not count.
	for _, opt := range []string{"--generators=no", "--recursive-errors=no"} {
		if name, _, _ := strings.Cut(opt, "="); strings.Contains(string(help), name) {
			args = append(args, opt)
		}
	}
	path := filepath.Join(t.TempDir(), "ansible-worker.service")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	out, err := exec.Command(sa, append(args, path)...).CombinedOutput()
	return string(out), err == nil
}

// aboutUnit returns the lines of systemd-analyze's output that are about
// our unit.
func aboutUnit(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "ansible-worker.service") {
			lines = append(lines, l)
		}
	}
	return lines
}

// The example unit passes `systemd-analyze verify` with no warning about
// it, its ExecStart= and ExecStartPre= pointing at the binary under test.
// Type=notify needs READY=1 from the worker: every end-to-end test checks
// that, as startWorker waits for it on $NOTIFY_SOCKET.
func TestServiceUnitVerifies(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(unitFile)
	require.NoError(t, err)
	require.Contains(t, string(data), unitBinary)
	unit := strings.ReplaceAll(string(data), unitBinary, binary)

	out, ok := verifyUnit(t, unit)
	require.True(t, ok, "systemd-analyze verify failed:\n%s", out)
	require.Empty(t, aboutUnit(out), "warnings about the unit:\n%s", out)

	// The check sees problems: an unknown option is reported.
	out, _ = verifyUnit(t, strings.Replace(unit, "[Service]\n", "[Service]\nNoSuchOption=1\n", 1))
	require.NotEmpty(t, aboutUnit(out), "a bad unit passes:\n%s", out)
}

// unitSettings returns the settings of the unit's [Service] section;
// repeated ones are joined with newlines.
func unitSettings(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(unitFile)
	require.NoError(t, err)
	out := map[string]string{}
	section := ""
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "["):
			section = l
		case section == "[Service]":
			k, v, _ := strings.Cut(l, "=")
			if out[k] != "" {
				v = out[k] + "\n" + v
			}
			out[k] = v
		}
	}
	return out
}

// The unit stops the worker the way the worker stops its playbooks, gives
// it the time it needs, and keeps what Ansible needs: no option that
// breaks Python modules or SSH to the managed hosts.
func TestServiceUnitSettings(t *testing.T) {
	t.Parallel()
	s := unitSettings(t)
	for k, v := range map[string]string{
		"Type": "notify", "KillMode": "mixed", "ExecReload": "/bin/kill -HUP $MAINPID", "Restart": "on-failure",
		"User": "ansible-worker", "Group": "ansible-worker", "ExecStart": unitBinary + " run",
		"ExecStartPre": unitBinary + " validate -c ${ANSIBLE_WORKER_CONFIG}", "EnvironmentFile": "-/etc/default/ansible-worker",
		"StateDirectory": "ansible-worker", "CacheDirectory": "ansible-worker", "UMask": "0027",
	} {
		require.Equal(t, v, s[k], k)
	}
	for _, k := range []string{"MemoryDenyWriteExecute", "PrivateUsers", "IPAddressDeny", "RestrictAddressFamilies", "PrivateNetwork"} {
		require.NotContains(t, s, k, "%s breaks playbooks", k)
	}

	cfg, err := config.LoadConfig(unitConfig, func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	require.Equal(t, "/var/cache/"+s["CacheDirectory"], cfg.Worker.DataDir)
	stop, err := strconv.ParseFloat(strings.TrimSuffix(s["TimeoutStopSec"], "s"), 64)
	require.NoError(t, err, "TimeoutStopSec in seconds")
	require.Greater(t, stop, cfg.Worker.ShutdownGrace+cfg.Worker.KillGrace+10, "TimeoutStopSec leaves the worker its grace")

	// The configuration the unit names by default is the one the default
	// file names.
	def, err := os.ReadFile(unitDefault)
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^ANSIBLE_WORKER_CONFIG=(\S+)$`).FindStringSubmatch(string(def))
	require.NotNil(t, m)
	require.Equal(t, "ANSIBLE_WORKER_CONFIG="+m[1], s["Environment"])
}

// ExecStartPre's command accepts the example configuration.
func TestServiceConfigValidates(t *testing.T) {
	t.Parallel()
	_, errOut, code := runCLIEnv(t, []string{"ANSIBLE_WORKER_CONFIG=" + unitConfig}, "validate")
	require.Equal(t, 0, code, errOut)
	_, errOut, code = runCLI(t, "validate", "-c", unitConfig)
	require.Equal(t, 0, code, errOut)
}
