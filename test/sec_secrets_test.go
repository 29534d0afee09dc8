package test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// secValidateBoth runs "validate -c file" and "-c file --validate" with env
// and checks the exit code, that the secrets appear nowhere in stdout and
// stderr, and that every one of keys appears in the output.
func secValidateBoth(t *testing.T, file string, env []string, code int, secrets, keys []string) {
	t.Helper()
	for _, args := range [][]string{{"validate", "-c", file}, {"-c", file, "--validate"}} {
		out, errOut, got := runCLIEnv(t, env, args...)
		require.Equal(t, code, got, "%v: %s", args, errOut)
		for _, s := range secrets {
			require.NotContains(t, out, s, args)
			require.NotContains(t, errOut, s, args)
		}
		for _, k := range keys {
			require.Contains(t, out+errOut, k, args)
		}
	}
}

// secConfigFile writes a configuration file in a fresh directory.
func secConfigFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
	return p
}

// A server URL that does not parse, or has a wrong scheme, is reported by
// key with its user info masked: the user name stays, the password or
// token does not.
func TestSecSecretsServerURL(t *testing.T) {
	t.Parallel()
	cfg := secConfigFile(t, `nats:
  servers: ["nats://alice:ab/RT-SECRET-9@127.0.0.1:4222", "ftp://tok/EN-SECRET-7@127.0.0.1"]
`)
	secValidateBoth(t, cfg, nil, 2, []string{"RT-SECRET-9", "EN-SECRET-7"},
		[]string{"nats.servers[0]", "nats.servers[1]", "nats://alice:******@127.0.0.1:4222"})
}

// A secret server URL given with --server is masked by validate, and by a
// command that cannot connect with it.
func TestSecSecretsServerFlag(t *testing.T) {
	t.Parallel()
	cfg := secConfigFile(t, "worker:\n  group_name: prod\n")
	url := "nats://alice:ab/RT-SECRET-9@127.0.0.1:1"
	out, errOut, code := runCLI(t, "validate", "-c", cfg, "-s", url)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "nats://alice:******@127.0.0.1:1")
	require.NotContains(t, out+errOut, "RT-SECRET-9")

	out, errOut, code = runCLI(t, "status", "-c", cfg, "-s", url, "some-task")
	require.Equal(t, 5, code, errOut)
	require.Contains(t, errOut, "alice")
	require.NotContains(t, out+errOut, "RT-SECRET-9")
}

// Header values, from the file and from RUNNER_NATS_HEADERS, are masked in
// validate's output and in errors; header names are shown.
func TestSecSecretsHeaders(t *testing.T) {
	t.Parallel()
	env := []string{"RUNNER_NATS_HEADERS=X-Api-Key=ENV-HDR-SECRET-2"}
	cfg := secConfigFile(t, `nats:
  headers:
    Authorization: Bearer HDR-SECRET-1
`)
	secValidateBoth(t, cfg, env, 0, []string{"HDR-SECRET-1", "ENV-HDR-SECRET-2"},
		[]string{"Authorization", "X-Api-Key", "configuration is valid"})

	// The same text mistyped into another key is masked in its error.
	cfg = secConfigFile(t, `worker:
  http_listen: Bearer HDR-SECRET-1
  jobs_file: /nonexistent/ENV-HDR-SECRET-2
nats:
  headers:
    Authorization: Bearer HDR-SECRET-1
`)
	secValidateBoth(t, cfg, env, 2, []string{"HDR-SECRET-1", "ENV-HDR-SECRET-2"},
		[]string{"worker.http_listen", "worker.jobs_file"})
}

// Every value that came from a ${VAR} is masked in validate's output and
// in errors; values written in the file are shown.
func TestSecSecretsExpandedVars(t *testing.T) {
	t.Parallel()
	env := []string{
		"AW_WID=VAR-SECRET-A", "AW_CLIENT=VAR-SECRET-B", "AW_TOKEN=VAR-SECRET-C", "AW_TRACE=VAR-SECRET-D",
		"AW_PORT=18884", "AW_LISTEN=VAR-SECRET-E", "AW_GROUP=bad VAR-SECRET-F", "AW_JOBS=/nonexistent/VAR-SECRET-G",
	}
	cfg := secConfigFile(t, `worker:
  worker_id: ${AW_WID}
  group_name: plain-group
mqtt:
  port: ${AW_PORT}
nats:
  servers: nats://${AW_TOKEN}@127.0.0.1:4222
  headers:
    X-Trace: "${AW_TRACE}"
  options:
    name: ${AW_CLIENT}
`)
	secValidateBoth(t, cfg, env, 0, []string{"VAR-SECRET", "18884"},
		[]string{"worker_id:", "group_name: plain-group", "X-Trace", "configuration is valid"})

	cfg = secConfigFile(t, `worker:
  http_listen: ${AW_LISTEN}
  group_name: "${AW_GROUP}"
  jobs_file: ${AW_JOBS}
`)
	secValidateBoth(t, cfg, env, 2, []string{"VAR-SECRET"},
		[]string{"worker.http_listen", "worker.group_name", "worker.jobs_file"})
}
