package test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// validate reports every problem of a file at once, each at its line and
// in words: a value of the wrong type, an unknown key, a ${VAR} whose
// value does not fit, a validation problem; a secret stays masked.
func TestCLIValidateAllProblems(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`worker:
  task_timeout: 1h
  concurency: 2
  concurrency: ${AW_CONC}
  max_forks: 0
mqtt:
  port: ${AW_MQTT_PW}
`), 0o600))
	out, errOut, code := runCLIEnv(t, []string{"AW_CONC=x", "AW_MQTT_PW=CFG-SECRET-1"}, "validate", "-c", cfg)
	require.Equal(t, 2, code, errOut)
	require.Empty(t, out)
	for _, want := range []string{
		cfg + `:2: worker.task_timeout: expected a number of seconds, got "1h"`,
		cfg + `:3: unknown key "worker.concurency"`,
		cfg + `:4: worker.concurrency: ${AW_CONC} gives "x": expected an integer`,
		cfg + `:5: worker.max_forks: must be 1 or more`,
		cfg + `:7: mqtt.port: ${AW_MQTT_PW} gives "******": expected an integer`,
	} {
		require.Contains(t, errOut, want)
	}
	require.NotContains(t, errOut, "CFG-SECRET")
	require.NotContains(t, errOut, "!!str")
}

// nats.embedded.config_file that is missing, or that nats-server cannot
// read, is a configuration error: validate and run exit 2 and say why.
func TestCLIEmbeddedConfigFileErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "nats.conf")
	require.NoError(t, os.WriteFile(bad, []byte("cluster { name: \n"), 0o600))
	for file, want := range map[string]string{
		filepath.Join(dir, "missing.conf"): "nats.embedded.config_file:",
		bad:                                "nats.embedded.config_file:",
	} {
		cfg := filepath.Join(t.TempDir(), "config.yaml")
		require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("worker:\n  playbook_directory: %s\n  data_dir: %s\nnats:\n  embedded:\n    enabled: true\n    listen: 127.0.0.1:-1\n    store_dir: %s\n    config_file: %s\n",
			playbookDir(t), filepath.Join(dir, "data"), filepath.Join(dir, "store"), file)), 0o600))
		for _, cmd := range [][]string{{"validate", "-c", cfg}, {"run", "-c", cfg}} {
			_, errOut, code := runCLI(t, cmd...)
			require.Equal(t, 2, code, "%v %s: %s", cmd, file, errOut)
			require.Contains(t, errOut, want, "%v", cmd)
		}
	}
}

// A valid configuration that invites double runs on a cluster (a short
// ack_wait with replicas) is accepted with a warning that says why and
// what to use.
func TestCLIValidateWarnsOfShortAckWaitInACluster(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("worker:\n  ack_wait: 5\nnats:\n  servers: [nats://127.0.0.1:4222]\n  replicas: 3\n"), 0o600))
	_, errOut, code := runCLI(t, "validate", "-c", cfg)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, errOut, "warning: worker.ack_wait 5 is short for nats.replicas 3")
	require.Contains(t, errOut, "use 20 or more")
	require.Contains(t, errOut, "configuration is valid")
}
