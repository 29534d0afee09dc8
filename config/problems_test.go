package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Every problem of a file comes out at once, each at its line, in the
// order of the file: ${VAR} problems, unknown keys, values of the wrong
// type, validation problems and RUNNER_NATS_* problems.
func TestAllProblemsAtOnce(t *testing.T) {
	path := writeConfig(t, `log_level: INFO
worker:
  task_timeout: 1h
  concurency: 2
  concurrency: ${CONC}
  max_deliver: 0
  group_name: ${UNSET_GROUP}
  allow_playbooks: {a: 1}
mqtt:
  port: 1.5
  tls_enabled: maybe
nats:
  servers: [nats://a:4222, {b: 1}]
  embedded: 7
`)
	_, err := LoadConfig(path, envMap{"CONC": "x", EnvPingInterval: "soon"}.lookup)
	require.Error(t, err)
	want := []string{
		path + `:3: worker.task_timeout: expected a number of seconds, got "1h"`,
		path + `:4: unknown key "worker.concurency"`,
		path + `:5: worker.concurrency: ${CONC} gives "x": expected an integer`,
		path + `:6: worker.max_deliver: must be 1 or more`,
		path + `:7: worker.group_name: environment variable UNSET_GROUP is not set`,
		path + `:8: worker.allow_playbooks: expected a list, got a mapping`,
		path + `:10: mqtt.port: expected a whole number, got "1.5"`,
		path + `:11: mqtt.tls_enabled: expected true or false, got "maybe"`,
		path + `:13: nats.servers[1]: expected a string, got a mapping`,
		path + `:14: nats.embedded: expected a mapping of keys to values, got "7"`,
		EnvPingInterval + ` must be a number of seconds`,
	}
	require.Equal(t, want, strings.Split(err.Error(), "\n"))
}

// A value that does not fit its key says what the key takes, in words.
func TestTypeErrorWords(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"worker:\n  ack_wait: soon\n", `worker.ack_wait: expected a number of seconds, got "soon"`},
		{"worker:\n  max_task_timeout: 1.5\n", `worker.max_task_timeout: expected a whole number of seconds, got "1.5"`},
		{"nats:\n  tasks_max_bytes: 1GB\n", `nats.tasks_max_bytes: expected a number of bytes, got "1GB"`},
		{"nats:\n  options:\n    allow_reconnect: sometimes\n", `nats.options.allow_reconnect: expected true or false, got "sometimes"`},
		{"nats:\n  options:\n    max_reconnect_attempts: many\n", `nats.options.max_reconnect_attempts: expected an integer, got "many"`},
		{"nats:\n  replicas: \"3\"\n", `nats.replicas: expected an integer (the quotes make it a string), got "3"`},
		{"worker:\n  group_name: {a: b}\n", `worker.group_name: expected a string, got a mapping`},
		{"nats:\n  servers: {a: b}\n", `nats.servers: expected a list or a comma-separated string, got a mapping`},
		{"worker: [1]\n", `worker: expected a mapping of keys to values, got a list`},
	} {
		_, err := load(t, tc.yaml, nil)
		require.ErrorContains(t, err, tc.want, tc.yaml)
		require.NotContains(t, err.Error(), "!!", tc.yaml)
		require.NotContains(t, err.Error(), "unmarshal", tc.yaml)
	}
}

// A value from ${VAR} that does not fit its key names the variable; its
// value is shown only when it is too short to be a secret, as in every
// other error.
func TestVarValueDoesNotFit(t *testing.T) {
	path := writeConfig(t, "worker:\n  concurrency: ${CONC}\n  status_interval: pre-${IV}\nmqtt:\n  port: ${PW}\n")
	_, err := LoadConfig(path, envMap{"CONC": "x", "IV": "1", "PW": "hunter2"}.lookup)
	require.Error(t, err)
	require.ErrorContains(t, err, path+`:2: worker.concurrency: ${CONC} gives "x": expected an integer`)
	require.ErrorContains(t, err, path+`:3: worker.status_interval: "pre-${IV}" gives "******": expected a number of seconds`)
	require.ErrorContains(t, err, path+`:5: mqtt.port: ${PW} gives "******": expected an integer`)
	require.NotContains(t, err.Error(), "hunter")
}

// A secret never appears in a type error: not the value of a secret key,
// nor a secret of the configuration put in the wrong key.
func TestTypeErrorNeverShowsSecret(t *testing.T) {
	_, err := load(t, "nats:\n  username: u\n  password: s3cret-pw\n  replicas: s3cret-pw\n", nil)
	require.ErrorContains(t, err, `nats.replicas: expected an integer, got "******"`)
	require.NotContains(t, err.Error(), "s3cret")

	_, err = LoadConfig(writeConfig(t, "mqtt:\n  keepalive: tok-s3cret\n"), envMap{EnvToken: "tok-s3cret"}.lookup)
	require.ErrorContains(t, err, `mqtt.keepalive: expected a number of seconds, got "******"`)

	_, err = load(t, "nats:\n  token: [tok-s3cret]\n  headers:\n    h: {v: hdr-s3cret}\n", nil)
	require.ErrorContains(t, err, "nats.token: expected a string, got a list")
	require.ErrorContains(t, err, "nats.headers.h: expected a string, got a mapping")
	require.NotContains(t, err.Error(), "s3cret")
}

// A value with a problem keeps its default, so validation says nothing of
// it, but a validation problem of another key still comes out.
func TestProblemValueKeepsDefault(t *testing.T) {
	_, err := load(t, "worker:\n  max_task_timeout: 60\n  task_timeout: ${UNSET_TT}\n  max_forks: 0\n", nil)
	require.Error(t, err)
	require.ErrorContains(t, err, "UNSET_TT is not set")
	require.ErrorContains(t, err, ":4: worker.max_forks: must be 1 or more")
	require.NotContains(t, err.Error(), "is more than worker.max_task_timeout")
}
