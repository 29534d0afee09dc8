package config

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// requireHidden fails unless text contains every one of keys and none of
// secrets.
func requireHidden(t *testing.T, text string, secrets, keys []string) {
	t.Helper()
	for _, s := range secrets {
		require.NotContains(t, text, s)
	}
	for _, k := range keys {
		require.Contains(t, text, k)
	}
}

// RedactURL finds the user info without parsing the URL: everything
// between "scheme://" (or the start) and the last '@'.
func TestSecRedactURLWithoutParsing(t *testing.T) {
	for in, want := range map[string]string{
		"nats://alice:ab/RT-SECRET-9@127.0.0.1:4222": "nats://alice:******@127.0.0.1:4222",
		"nats://alice:a?b#c@host:notaport":           "nats://alice:******@host:notaport",
		"tls://tok/EN-SECRET-7@host":                 "tls://******@host",
		"alice:ab/RT-SECRET-9@host:4222":             "alice:******@host:4222",
		"alice:pw://x@host":                          "alice:******@host",
		"nats://alice:p w\x01%zz@host":               "nats://alice:******@host",
		"nats://u:p@h:4222/x@y":                      "nats://u:******@y",
		"nats://host:4222/path":                      "nats://host:4222/path",
	} {
		got := RedactURL(in)
		require.Equal(t, want, got, in)
		require.Equal(t, got, RedactURL(got), "RedactURL is idempotent")
	}
}

// A server URL that does not parse is reported by key with its secret
// masked, by Validate and by LoadConfig.
func TestSecServerURLErrors(t *testing.T) {
	c := DefaultConfig()
	c.NATS.Servers = StringList{"nats://alice:ab/RT-SECRET-9@127.0.0.1:4222", "ftp://tok/EN-SECRET-7@h"}
	err := c.Validate()
	require.Error(t, err)
	requireHidden(t, err.Error(), []string{"RT-SECRET-9", "EN-SECRET-7"},
		[]string{"nats.servers[0]", "nats.servers[1]", "nats://alice:******@127.0.0.1:4222"})

	_, err = load(t, "nats:\n  servers: [\"nats://alice:ab/RT-SECRET-9@127.0.0.1:4222\"]\n", nil)
	require.Error(t, err)
	requireHidden(t, err.Error(), []string{"RT-SECRET-9"}, []string{"nats.servers[0]", "alice"})
}

// Header values, from the file and from RUNNER_NATS_HEADERS, are masked in
// Masked and YAML; their names are not.
func TestSecHeadersMasked(t *testing.T) {
	c, err := load(t, "nats:\n  headers:\n    Authorization: Bearer HDR-SECRET-1\n    Empty: \"\"\n",
		envMap{EnvHeaders: "X-Api-Key=ENV-HDR-SECRET-2"})
	require.NoError(t, err)
	m := c.Masked()
	require.Equal(t, map[string]string{"Authorization": SecretMask, "X-Api-Key": SecretMask, "Empty": ""}, m.NATS.Headers)
	require.Equal(t, "Bearer HDR-SECRET-1", c.NATS.Headers["Authorization"], "the original is untouched")
	out, err := c.YAML()
	require.NoError(t, err)
	requireHidden(t, string(out), []string{"HDR-SECRET-1", "ENV-HDR-SECRET-2"}, []string{"Authorization", "X-Api-Key"})
}

// A header value, a password or a token repeated in another key's error
// is masked there, whatever its length, but a short one is not cut out
// of words.
func TestSecSecretFieldsNotInErrors(t *testing.T) {
	jobs := filepath.Join(t.TempDir(), "HDR-SECRET-3")
	c := DefaultConfig()
	c.NATS.Headers = map[string]string{"Authorization": jobs}
	c.Worker.JobsFile = jobs
	c.Worker.HTTPListen = "PW-SECRET-4"
	c.NATS.Username = "bob"
	c.NATS.Password = "PW-SECRET-4"
	c.Worker.GroupName = "a!"
	c.MQTT.Password = "a!"
	err := c.Validate()
	require.Error(t, err)
	requireHidden(t, err.Error(), []string{"HDR-SECRET-3", "PW-SECRET-4", `"a!"`},
		[]string{"worker.jobs_file", "worker.http_listen", "worker.group_name"})

	c = DefaultConfig()
	c.NATS.Password = "p"
	require.ErrorContains(t, c.Validate(), "nats.password: is set but nats.username is empty")
}

const expansionFile = `
worker:
  worker_id: ${WID}
  allow_playbooks: ["${PLAYBOOK}", other.yml]
  group_name: g${EMPTY}
  topic_prefix: ${UNSET:-}ansible
mqtt:
  port: ${PORT}
  client_id: &cid "${CID}"
nats:
  servers: nats://${NATS_USER}@127.0.0.1:4222
  subject_id: plain-subject
  headers:
    X-Trace: ${TRACE}
  options:
    name: *cid
`

var expansionEnv = envMap{
	"WID":       "VAR-SECRET-A",
	"PLAYBOOK":  "VAR-SECRET-B.yml",
	"EMPTY":     "",
	"PORT":      "18884",
	"CID":       "VAR-SECRET-C",
	"NATS_USER": "VAR-SECRET-D",
	"TRACE":     "VAR-SECRET-E",
}

// Every value that came from a ${VAR} is masked in Masked and YAML, even
// through an alias; values written in the file are not.
func TestSecExpandedValuesMasked(t *testing.T) {
	c, err := load(t, expansionFile, expansionEnv)
	require.NoError(t, err)
	require.Equal(t, "VAR-SECRET-A", c.Worker.WorkerID)
	require.Equal(t, 18884, c.MQTT.Port)
	m := c.Masked()
	require.Equal(t, SecretMask, m.Worker.WorkerID)
	require.Equal(t, PlaybookPatterns{SecretMask, "other.yml"}, m.Worker.AllowPlaybooks)
	require.Equal(t, []string{SecretMask}, []string(m.NATS.Servers))
	require.Equal(t, SecretMask, m.MQTT.ClientID)
	require.Equal(t, SecretMask, m.NATS.Options.Name)
	require.Equal(t, "plain-subject", m.NATS.SubjectID)
	require.Equal(t, "VAR-SECRET-A", c.Worker.WorkerID, "the original is untouched")

	out, err := c.YAML()
	require.NoError(t, err)
	text := string(out)
	requireHidden(t, text, []string{"VAR-SECRET", "18884"},
		[]string{"worker_id: '******'", "port: '******'", "subject_id: plain-subject", "X-Trace"})
	// An empty expansion hides nothing.
	require.Contains(t, text, "topic_prefix: ansible")
	require.Equal(t, []string{"CID", "EMPTY", "NATS_USER", "PLAYBOOK", "PORT", "TRACE", "WID"}, c.ExpandedVars)
}

// Values that came from a ${VAR} are masked in errors of LoadConfig,
// Validate and CheckPlaybookDir; short ones are left alone, and %w
// wrapping survives the redaction.
func TestSecExpandedValuesNotInErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	env := envMap{
		"LISTEN": "VAR-SECRET-F", "GROUP": "bad VAR-SECRET-G", "JOBS": file + "/VAR-SECRET-H",
		"SUBJ": "er", "DIR": "/nonexistent/VAR-SECRET-I",
	}
	text := "worker:\n  http_listen: ${LISTEN}\n  group_name: \"${GROUP}\"\n  jobs_file: ${JOBS}\n" +
		"  concurrency: 0\n  playbook_directory: ${DIR}\nnats:\n  subject_id: ${SUBJ}\n"
	_, err := load(t, text, env)
	require.Error(t, err)
	requireHidden(t, err.Error(), []string{"VAR-SECRET", file},
		[]string{"worker.http_listen", "worker.group_name", "worker.jobs_file", "worker.concurrency"})
	require.ErrorIs(t, err, syscall.ENOTDIR)

	c, err := load(t, "worker:\n  playbook_directory: ${DIR}\n", env)
	require.NoError(t, err)
	err = c.CheckPlaybookDir()
	requireHidden(t, err.Error(), []string{"VAR-SECRET-I"}, []string{"worker.playbook_directory"})

}
