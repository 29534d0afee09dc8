package config

import (
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ansible-worker/ansible-worker/schemas"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// envMap is an environment for LoadConfig.
type envMap map[string]string

func (e envMap) lookup(k string) (string, bool) {
	v, ok := e[k]
	return v, ok
}

// writeConfig writes a configuration file in a fresh directory.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
	return p
}

func load(t *testing.T, text string, env envMap) (*Config, error) {
	t.Helper()
	return LoadConfig(writeConfig(t, text), env.lookup)
}

func TestDefaults(t *testing.T) {
	t.Chdir(t.TempDir()) // no ./config.yaml here
	c, err := LoadConfig("", envMap{}.lookup)
	require.NoError(t, err)
	require.Equal(t, "", c.File)
	require.Equal(t, "INFO", c.LogLevel)
	require.Equal(t, slog.LevelInfo, c.SlogLevel())
	require.Equal(t, "text", c.LogFormat)
	require.Equal(t, "", c.LogFile)

	require.Equal(t, "", c.MQTT.Host)
	require.False(t, c.MQTT.Enabled())
	require.Equal(t, 1883, c.MQTT.Port)
	require.Equal(t, 60, c.MQTT.Keepalive)
	require.Equal(t, time.Minute, c.MQTT.KeepaliveDuration())
	require.False(t, c.MQTT.TLSEnabled)
	require.Empty(t, c.MQTT.TLSCertFile)
	require.Empty(t, c.MQTT.TLSKeyFile)
	require.Equal(t, 86400, c.MQTT.SessionExpiry)
	require.Equal(t, 24*time.Hour, c.MQTT.SessionExpiryDuration())

	w := c.Worker
	require.Equal(t, "production", w.GroupName)
	require.Equal(t, ".", w.PlaybookDirectory)
	require.Equal(t, "ansible", w.TopicPrefix)
	require.Equal(t, 100, w.MaxQueueSize)
	require.Equal(t, 3600, w.TaskTimeout)
	require.Equal(t, time.Hour, w.TaskTimeoutDuration())
	require.Equal(t, 1, w.Concurrency)
	require.Equal(t, 3, w.MaxDeliver)
	require.Equal(t, "ansible-playbook", w.AnsiblePlaybook)
	require.Empty(t, w.JobsFile)
	require.Empty(t, w.AllowPlaybooks)
	require.Empty(t, w.HTTPListen)
	require.Equal(t, 2*time.Second, w.StatusIntervalDuration())
	require.Equal(t, 30*time.Second, w.ShutdownGraceDuration())
	require.Equal(t, 10*time.Second, w.KillGraceDuration())
	require.Equal(t, time.Minute, w.GitTimeoutDuration())
	require.Equal(t, DefaultDataDir(), w.DataDir)
	host, _ := os.Hostname()
	require.True(t, strings.HasSuffix(w.ID(), "-"+strconv.Itoa(os.Getpid())))
	require.True(t, schemas.ValidID(w.ID()), w.ID())
	require.Contains(t, w.ID(), strings.ReplaceAll(host, ".", "-"))

	n := c.NATS
	require.Empty(t, n.Servers)
	require.Equal(t, []string{"nats://127.0.0.1:4222"}, c.ClientServers())
	require.Equal(t, 1, n.Replicas)
	require.False(t, n.Embedded.Enabled)
	require.Equal(t, "127.0.0.1:4222", n.Embedded.Listen)
	require.Equal(t, "./data", n.Embedded.StoreDir)
	require.Empty(t, n.Embedded.MQTTListen)
	require.True(t, *n.Options.AllowReconnect)
	require.Equal(t, -1, *n.Options.MaxReconnectAttempts)
	require.Equal(t, 2*time.Second, n.Options.ConnectTimeoutDuration())
	require.Equal(t, 2*time.Second, n.Options.ReconnectTimeWaitDuration())
	require.Equal(t, 2*time.Minute, n.Options.PingIntervalDuration())
	require.Equal(t, time.Minute, n.Options.FlushTimeoutDuration())
	require.Equal(t, "production", c.SubjectID())
	require.NoError(t, DefaultConfig().Validate())
}

func TestDefaultFileInWorkingDir(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	require.NoError(t, os.WriteFile("config.yaml", []byte("worker:\n  group_name: fromcwd\n"), 0o600))
	c, err := LoadConfig("", envMap{}.lookup)
	require.NoError(t, err)
	require.Equal(t, "fromcwd", c.Worker.GroupName)
	require.Equal(t, DefaultConfigFile, c.File)
}

func TestExplicitPathMustExist(t *testing.T) {
	_, err := LoadConfig(filepath.Join(t.TempDir(), "nope.yaml"), envMap{}.lookup)
	require.ErrorContains(t, err, "nope.yaml does not exist")
}

func TestEmptyAndCommentOnlyFiles(t *testing.T) {
	for _, text := range []string{"", "# just a comment\n", "~\n", "---\n"} {
		c, err := load(t, text, nil)
		require.NoError(t, err, "%q", text)
		require.Equal(t, "production", c.Worker.GroupName)
	}
	_, err := load(t, "- a\n- b\n", nil)
	require.ErrorContains(t, err, "must be a mapping")
}

func TestFileValues(t *testing.T) {
	c, err := load(t, `
log_level: debug
log_format: json
mqtt:
  host: mqtt.example.com
  port: 8883
  username: u
  password: p
  keepalive: 30
  tls_enabled: true
  client_id: cid
worker:
  group_name: production
  playbook_directory: /opt/pb
  max_queue_size: 0
  task_timeout: 0
  concurrency: 4
  allow_playbooks: [site.yml, "deploy/*.yml"]
  status_interval: 0.5
  worker_id: w1
nats:
  servers:
    - nats://a:4222
    - nats://b:4222
  headers: {producer: ansible-worker, n: 1}
  options:
    name: me
    allow_reconnect: false
    max_reconnect_attempts: 5
    connect_timeout: 1.5
  replicas: 3
`, nil)
	require.NoError(t, err)
	require.Equal(t, slog.LevelDebug, c.SlogLevel())
	require.Equal(t, "mqtt.example.com:8883", c.MQTT.Addr())
	require.Equal(t, 30*time.Second, c.MQTT.KeepaliveDuration())
	require.Equal(t, "production", c.Worker.GroupName)
	require.Equal(t, 0, c.Worker.MaxQueueSize)
	require.Equal(t, time.Duration(0), c.Worker.TaskTimeoutDuration())
	require.Equal(t, 4, c.Worker.Concurrency)
	require.Equal(t, PlaybookPatterns{"site.yml", "deploy/*.yml"}, c.Worker.AllowPlaybooks)
	require.Equal(t, 500*time.Millisecond, c.Worker.StatusIntervalDuration())
	require.Equal(t, "w1", c.Worker.ID())
	require.Equal(t, []string{"nats://a:4222", "nats://b:4222"}, c.ClientServers())
	require.Equal(t, map[string]string{"producer": "ansible-worker", "n": "1"}, c.NATS.Headers)
	require.Equal(t, "me", c.NATS.Options.Name)
	require.False(t, *c.NATS.Options.AllowReconnect)
	require.Equal(t, 5, *c.NATS.Options.MaxReconnectAttempts)
	require.Equal(t, 1500*time.Millisecond, c.NATS.Options.ConnectTimeoutDuration())
	// Options not in the file keep their defaults.
	require.Equal(t, 2, c.NATS.Options.MaxOutstandingPings)
	require.Equal(t, 3, c.NATS.Replicas)
	require.Equal(t, "production", c.SubjectID())
}

func TestServersAsCommaString(t *testing.T) {
	c, err := load(t, "nats:\n  servers: nats://a:1, nats://b:2 ,\n", nil)
	require.NoError(t, err)
	require.Equal(t, []string{"nats://a:1", "nats://b:2"}, []string(c.NATS.Servers))

	_, err = load(t, "nats:\n  servers: {a: b}\n", nil)
	require.ErrorContains(t, err, "list or a comma-separated string")
}

func TestExpansion(t *testing.T) {
	env := envMap{
		"P":     "1884",
		"PW":    "0123",
		"HOST":  "broker-1.example",
		"NAME":  "broker: #1",
		"S":     "nats://x:1,nats://y:2",
		"EMPTY": "",
		"LIST":  "[a, b]",
		"F":     "0.25",
	}
	c, err := load(t, `
mqtt:
  host: ${HOST}
  port: ${P}
  password: ${PW}
  username: "${PW}"
  client_id: pre-${PW}-$${NOT_A_VAR}-${UNSET:-dflt}-${EMPTY:-e}
worker:
  group_name: g${EMPTY}
  playbook_directory: ${LIST}
  status_interval: ${F}
nats:
  servers: ${S}
  headers:
    h: ${P}
  options:
    name: ${NAME}
`, env)
	require.NoError(t, err)
	require.Equal(t, "broker-1.example", c.MQTT.Host)
	require.Equal(t, "broker: #1", c.NATS.Options.Name) // no YAML injection
	require.Equal(t, 1884, c.MQTT.Port)
	require.Equal(t, "0123", c.MQTT.Password) // a string field keeps the text
	require.Equal(t, "0123", c.MQTT.Username)
	require.Equal(t, "pre-0123-${NOT_A_VAR}-dflt-e", c.MQTT.ClientID)
	require.Equal(t, "g", c.Worker.GroupName)
	require.Equal(t, "[a, b]", c.Worker.PlaybookDirectory) // no YAML injection
	require.Equal(t, 250*time.Millisecond, c.Worker.StatusIntervalDuration())
	require.Equal(t, []string{"nats://x:1", "nats://y:2"}, []string(c.NATS.Servers))
	require.Equal(t, "1884", c.NATS.Headers["h"])
}

func TestExpansionQuotedStaysString(t *testing.T) {
	// A quoted ${P} stays a string, so it cannot go into an int field.
	path := writeConfig(t, "mqtt:\n  port: \"${P}\"\n")
	_, err := LoadConfig(path, envMap{"P": "1884"}.lookup)
	require.ErrorContains(t, err, path+`:2: mqtt.port: ${P} gives "******": expected an integer (the quotes make it a string)`)
}

func TestExpansionErrors(t *testing.T) {
	path := writeConfig(t, "mqtt:\n  host: h\n  password: ${MQTT_PASSWORD}\nworker:\n  group_name: ${GROUP}\n")
	_, err := LoadConfig(path, envMap{}.lookup)
	require.Error(t, err)
	msg := err.Error()
	require.Contains(t, msg, path+":3")
	require.Contains(t, msg, "MQTT_PASSWORD is not set")
	require.Contains(t, msg, "mqtt.password")
	require.Contains(t, msg, path+":5")
	require.Contains(t, msg, "GROUP is not set")

	_, err = load(t, "mqtt:\n  host: ${not valid}\n", nil)
	require.ErrorContains(t, err, ":2")
	require.ErrorContains(t, err, "invalid variable reference")

	_, err = load(t, "mqtt:\n  host: ${OPEN\n", nil)
	require.ErrorContains(t, err, "invalid variable reference")
}

func TestNilEnvUsesProcessEnvironment(t *testing.T) {
	t.Setenv("AW_TEST_GROUP", "fromenv")
	c, err := LoadConfig(writeConfig(t, "worker:\n  group_name: ${AW_TEST_GROUP}\n"), nil)
	require.NoError(t, err)
	require.Equal(t, "fromenv", c.Worker.GroupName)
}

func TestUnknownKeys(t *testing.T) {
	path := writeConfig(t, `log_level: INFO
mqtt:
  hots: x
worker:
  group_name: g
  concurency: 2
nats:
  options:
    nme: x
  embedded:
    enabled: false
    listn: x
bogus: 1
`)
	_, err := LoadConfig(path, envMap{}.lookup)
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{
		path + `:3: unknown key "mqtt.hots"`,
		path + `:6: unknown key "worker.concurency"`,
		path + `:9: unknown key "nats.options.nme"`,
		path + `:12: unknown key "nats.embedded.listn"`,
		path + `:13: unknown key "bogus"`,
	} {
		require.Contains(t, msg, want)
	}
	// "File" is not a key.
	_, err = load(t, "file: x\n", nil)
	require.ErrorContains(t, err, `unknown key "file"`)
}

func TestUnknownKeysThroughAnchorsAndMerges(t *testing.T) {
	_, err := load(t, `
base: &b
  host: h
`, nil)
	require.ErrorContains(t, err, `unknown key "base"`)

	c, err := load(t, `
mqtt: &m
  host: h
  port: 1999
worker:
  group_name: g
nats:
  embedded:
    <<: {enabled: true, listen: "127.0.0.1:4999"}
`, nil)
	require.NoError(t, err)
	require.True(t, c.NATS.Embedded.Enabled)
	require.Equal(t, "127.0.0.1:4999", c.NATS.Embedded.Listen)

	_, err = load(t, `
nats:
  embedded:
    <<: {enabled: true, bad_key: 1}
`, nil)
	require.ErrorContains(t, err, `unknown key "nats.embedded.bad_key"`)
}

func TestTypeErrorNamesLine(t *testing.T) {
	path := writeConfig(t, "mqtt:\n  host: h\n  port: hunter2\n  keepalive: [1]\n")
	_, err := LoadConfig(path, nil)
	require.ErrorContains(t, err, path+`:3: mqtt.port: expected an integer, got "hunter2"`)
	require.ErrorContains(t, err, path+":4: mqtt.keepalive: expected a number of seconds, got a list")

	path = writeConfig(t, "mqtt: [\n")
	_, err = LoadConfig(path, nil)
	require.ErrorContains(t, err, path+":1: ")

	path = writeConfig(t, "mqtt:\n  port: 1\n  port: 2\n")
	_, err = LoadConfig(path, nil)
	require.ErrorContains(t, err, path+":3: mapping key \"port\" already defined")
}

func TestEnvOverrides(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "u.creds")
	require.NoError(t, os.WriteFile(creds, []byte("x"), 0o600))
	seedFile := filepath.Join(dir, "u.nk")
	require.NoError(t, os.WriteFile(seedFile, []byte("x"), 0o600))

	cases := []struct {
		name, value string
		check       func(t *testing.T, c *Config)
	}{
		{EnvServers, "nats://a:1, nats://b:2", func(t *testing.T, c *Config) {
			require.Equal(t, []string{"nats://a:1", "nats://b:2"}, c.ClientServers())
		}},
		{EnvSubjectID, "sid", func(t *testing.T, c *Config) {
			require.Equal(t, "sid", c.NATS.SubjectID)
			require.Equal(t, "sid", c.SubjectID())
		}},
		{EnvHeaders, "producer=ansible-runner,foo=bar", func(t *testing.T, c *Config) {
			// Merged over the file's headers, the variable winning.
			require.Equal(t, map[string]string{"producer": "ansible-runner", "foo": "bar", "file": "yes"}, c.NATS.Headers)
		}},
		{EnvUsername, "bob", func(t *testing.T, c *Config) { require.Equal(t, "bob", c.NATS.Username) }},
		{EnvPassword, "pw", func(t *testing.T, c *Config) {
			require.Equal(t, "pw", c.NATS.Password)
			require.Equal(t, "bob", c.NATS.Username)
		}},
		{EnvToken, "tok", func(t *testing.T, c *Config) { require.Equal(t, "tok", c.NATS.Token) }},
		{EnvUserCredentials, creds, func(t *testing.T, c *Config) { require.Equal(t, creds, c.NATS.UserCredentials) }},
		{EnvNkeysSeed, seedFile, func(t *testing.T, c *Config) { require.Equal(t, seedFile, c.NATS.NkeysSeed) }},
		{EnvClientName, "cn", func(t *testing.T, c *Config) { require.Equal(t, "cn", c.NATS.Options.Name) }},
		{EnvClientVerbose, "Yes", func(t *testing.T, c *Config) { require.True(t, c.NATS.Options.Verbose) }},
		{EnvAllowReconnect, "off", func(t *testing.T, c *Config) { require.False(t, *c.NATS.Options.AllowReconnect) }},
		{EnvConnectTimeout, "3.5", func(t *testing.T, c *Config) {
			require.Equal(t, 3500*time.Millisecond, c.NATS.Options.ConnectTimeoutDuration())
		}},
		{EnvReconnectTimeWait, "7", func(t *testing.T, c *Config) {
			require.Equal(t, 7*time.Second, c.NATS.Options.ReconnectTimeWaitDuration())
		}},
		{EnvPingInterval, "0.5", func(t *testing.T, c *Config) {
			require.Equal(t, 500*time.Millisecond, c.NATS.Options.PingIntervalDuration())
		}},
		{EnvFlushTimeout, "1.25", func(t *testing.T, c *Config) {
			require.Equal(t, 1250*time.Millisecond, c.NATS.Options.FlushTimeoutDuration())
		}},
		{EnvMaxReconnectAttempts, "12", func(t *testing.T, c *Config) { require.Equal(t, 12, *c.NATS.Options.MaxReconnectAttempts) }},
		{EnvMaxOutstandingPings, "5", func(t *testing.T, c *Config) { require.Equal(t, 5, c.NATS.Options.MaxOutstandingPings) }},
		{EnvFlusherQueueSize, "64", func(t *testing.T, c *Config) { require.Equal(t, 64, c.NATS.Options.FlusherQueueSize) }},
		{EnvPendingSize, "1024", func(t *testing.T, c *Config) { require.Equal(t, 1024, c.NATS.Options.PendingSize) }},
	}
	file := `
nats:
  servers: [nats://file:4222]
  subject_id: filesid
  headers: {file: "yes", foo: file}
  options:
    name: filename
    verbose: false
    allow_reconnect: true
    connect_timeout: 9
    reconnect_time_wait: 9
    ping_interval: 9
    flush_timeout: 9
    max_reconnect_attempts: 9
    max_outstanding_pings: 9
    flusher_queue_size: 9
    pending_size: 9
`
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := envMap{tc.name: tc.value}
			if tc.name == EnvPassword {
				env[EnvUsername] = "bob" // a password alone is an error
			}
			c, err := load(t, file, env)
			require.NoError(t, err)
			tc.check(t, c)
		})
	}

	// Every seed variable is covered above.
	seen := map[string]bool{}
	for _, tc := range cases {
		seen[tc.name] = true
	}
	require.Len(t, seen, 19)
	require.True(t, seen["RUNNER_MAX_OUTSTANDING_PINGS"])

	// An empty variable counts as unset.
	c, err := load(t, file, envMap{EnvServers: "", EnvClientName: " "})
	require.NoError(t, err)
	require.Equal(t, []string{"nats://file:4222"}, c.ClientServers())
	require.Equal(t, "filename", c.NATS.Options.Name)
}

func TestEnvBooleans(t *testing.T) {
	for v, want := range map[string]bool{
		"true": true, "TRUE": true, "yes": true, "y": true, "Y": true, "1": true, "on": true, "On": true,
		"false": false, "no": false, "0": false, "2": false, "enabled": false, "t": false,
	} {
		c, err := LoadConfig("", envMap{EnvClientVerbose: v, EnvAllowReconnect: v}.lookup)
		require.NoError(t, err, v)
		require.Equal(t, want, c.NATS.Options.Verbose, v)
		require.Equal(t, want, *c.NATS.Options.AllowReconnect, v)
	}
}

func TestEnvBadNumbers(t *testing.T) {
	for _, name := range []string{
		EnvConnectTimeout, EnvReconnectTimeWait, EnvPingInterval, EnvFlushTimeout,
		EnvMaxReconnectAttempts, EnvMaxOutstandingPings, EnvFlusherQueueSize, EnvPendingSize,
	} {
		_, err := LoadConfig("", envMap{name: "s3cr3t-not-a-number"}.lookup)
		require.ErrorContains(t, err, name)
		require.NotContains(t, err.Error(), "s3cr3t")
	}
	_, err := LoadConfig("", envMap{EnvConnectTimeout: "NaN"}.lookup)
	require.ErrorContains(t, err, EnvConnectTimeout)
	_, err = LoadConfig("", envMap{EnvMaxReconnectAttempts: "1.5"}.lookup)
	require.ErrorContains(t, err, EnvMaxReconnectAttempts)
}

func TestParseHeaders(t *testing.T) {
	h, err := ParseHeaders("producer=ansible-runner, foo = bar ,x=a=b,,empty=")
	require.NoError(t, err)
	require.Equal(t, map[string]string{"producer": "ansible-runner", "foo": "bar", "x": "a=b", "empty": ""}, h)

	for _, bad := range []string{"novalue", "a=b,secretvalue", "=secretvalue"} {
		_, err := ParseHeaders(bad)
		require.Error(t, err, bad)
		require.NotContains(t, err.Error(), "secretvalue")
		require.NotContains(t, err.Error(), "novalue")
	}
	_, err = LoadConfig("", envMap{EnvHeaders: "a=1,secretvalue"}.lookup)
	require.ErrorContains(t, err, EnvHeaders)
	require.ErrorContains(t, err, "entry 2")
	require.NotContains(t, err.Error(), "secretvalue")

	// Header names with ':' or control characters are rejected; values are
	// never repeated.
	_, err = LoadConfig("", envMap{EnvHeaders: "a:b=1,ok=bad\x01secret"}.lookup)
	require.ErrorContains(t, err, "nats.headers")
	require.ErrorContains(t, err, `"a:b"`)
	require.ErrorContains(t, err, "nats.headers.ok")
	require.NotContains(t, err.Error(), "secret")
}

func TestMaskedAndYAML(t *testing.T) {
	seed, err := nkeys.CreateUser()
	require.NoError(t, err)
	rawSeed, err := seed.Seed()
	require.NoError(t, err)

	c := DefaultConfig()
	c.MQTT.Password = "mqtt-secret"
	c.NATS.Password = "nats-secret"
	c.NATS.Username = "user"
	c.NATS.Token = "token-secret"
	c.NATS.NkeysSeed = string(rawSeed)
	c.NATS.Servers = StringList{"nats://bob:url-secret@h:4222", "tls://tokenurl-secret@h2:4222", "nats://plain:4222", "bob:bare-secret@h3"}
	c.NATS.Headers = map[string]string{"k": "v"}
	c.Worker.AllowPlaybooks = []string{"a.yml"}

	m := c.Masked()
	require.Equal(t, SecretMask, m.MQTT.Password)
	require.Equal(t, SecretMask, m.NATS.Password)
	require.Equal(t, SecretMask, m.NATS.Token)
	require.Equal(t, SecretMask, m.NATS.NkeysSeed)
	require.Equal(t, "user", m.NATS.Username)
	require.Equal(t, []string{
		"nats://bob:" + SecretMask + "@h:4222",
		"tls://" + SecretMask + "@h2:4222",
		"nats://plain:4222",
		"bob:" + SecretMask + "@h3",
	}, []string(m.NATS.Servers))

	// A deep copy: the original is untouched and shares nothing.
	require.Equal(t, "nats-secret", c.NATS.Password)
	require.Equal(t, "nats://bob:url-secret@h:4222", c.NATS.Servers[0])
	m.NATS.Headers["k"] = "changed"
	m.Worker.AllowPlaybooks[0] = "changed"
	*m.NATS.Options.AllowReconnect = false
	*m.NATS.Options.MaxReconnectAttempts = 7
	require.Equal(t, "v", c.NATS.Headers["k"])
	require.Equal(t, "a.yml", c.Worker.AllowPlaybooks[0])
	require.True(t, *c.NATS.Options.AllowReconnect)
	require.Equal(t, -1, *c.NATS.Options.MaxReconnectAttempts)

	// Empty secrets stay empty.
	require.Empty(t, DefaultConfig().Masked().NATS.Password)

	out, err := c.YAML()
	require.NoError(t, err)
	text := string(out)
	for _, secret := range []string{"mqtt-secret", "nats-secret", "token-secret", string(rawSeed), "url-secret", "tokenurl-secret", "bare-secret"} {
		require.NotContains(t, text, secret)
	}
	require.Contains(t, text, SecretMask)

	// The YAML is the effective configuration: it decodes back, every key
	// known.
	var back Config
	dec := yaml.NewDecoder(strings.NewReader(text))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&back))
	require.Equal(t, c.Worker.GroupName, back.Worker.GroupName)
	// Four secret fields, three URLs and a header value.
	require.Equal(t, 8, strings.Count(text, SecretMask))
}

func TestSecretsNeverInErrors(t *testing.T) {
	c := DefaultConfig()
	c.NATS.Servers = StringList{"nats://bob:url-secret@h:notaport", "ftp://tok-secret@h"}
	c.NATS.Token = "token-secret"
	c.NATS.Password = "pw-secret"
	c.NATS.Username = "bob"
	c.NATS.NkeysSeed = "SUnot-a-seed-secret"
	c.MQTT.Password = "mqtt-secret"
	err := c.Validate()
	require.Error(t, err)
	for _, s := range []string{"url-secret", "tok-secret", "token-secret", "pw-secret", "not-a-seed-secret", "mqtt-secret"} {
		require.NotContains(t, err.Error(), s)
	}
	require.ErrorContains(t, err, "nats.servers[0]")
	require.ErrorContains(t, err, "nats.servers[1]")
	require.ErrorContains(t, err, "nats.nkeys_seed")
	require.ErrorContains(t, err, "only one way to authenticate")
}

func TestValidate(t *testing.T) {
	c, _ := brokenConfig()
	err := c.Validate()
	require.Error(t, err)
	for _, key := range []string{
		"log_level", "log_format", "mqtt.host", "mqtt.port", "mqtt.keepalive", "mqtt.tls_ca_file",
		"mqtt.tls_cert_file", "mqtt.client_id", "mqtt.session_expiry",
		"worker.group_name", "worker.topic_prefix", "worker.worker_id", "worker.max_queue_size",
		"worker.task_timeout", "worker.concurrency", "worker.max_deliver", "worker.ansible_playbook",
		"worker.jobs_file", "worker.allow_playbooks[0]", "worker.http_listen", "worker.status_interval",
		"worker.kill_grace", "nats.subject_id", "nats.headers", "nats.options.max_outstanding_pings",
		"nats.options.pending_size", "nats.tls.ca_file", "nats.tls.cert_file", "cert_file and key_file",
		"nats.replicas", "nats.embedded.listen", "nats.embedded.mqtt_listen", "nats.user_credentials",
		"only one way to authenticate",
	} {
		require.ErrorContains(t, err, key)
	}

	// Through LoadConfig, too.
	_, err = load(t, "worker:\n  concurrency: 0\n  group_name: a.b\nnats:\n  replicas: 0\n", nil)
	require.ErrorContains(t, err, "worker.concurrency")
	require.ErrorContains(t, err, "worker.group_name")
	require.ErrorContains(t, err, "nats.replicas")

	// Log levels.
	for _, l := range []string{"debug", "INFO", "Warning", "WARN", "error", "CRITICAL"} {
		c := DefaultConfig()
		c.LogLevel = l
		require.NoError(t, c.Validate(), l)
	}
	lvl, err := ParseLogLevel("warn")
	require.NoError(t, err)
	require.Equal(t, slog.LevelWarn, lvl)

	// A random embedded port and an inline nkey seed are fine.
	kp, err := nkeys.CreateUser()
	require.NoError(t, err)
	seed, err := kp.Seed()
	require.NoError(t, err)
	c = DefaultConfig()
	c.NATS.Embedded.Enabled = true
	c.NATS.Embedded.Listen = "127.0.0.1:-1"
	c.NATS.Embedded.MQTTListen = "127.0.0.1:0"
	c.NATS.NkeysSeed = string(seed)
	require.NoError(t, c.Validate())
	require.True(t, c.NATS.NkeysSeedInline())
	akp, err := nkeys.CreateAccount()
	require.NoError(t, err)
	aseed, err := akp.Seed()
	require.NoError(t, err)
	c.NATS.NkeysSeed = string(aseed)
	require.ErrorContains(t, c.Validate(), "not a user seed")
	require.NotContains(t, c.Validate().Error(), string(aseed))
	c.NATS.NkeysSeed = "/nonexistent/seed.nk"
	require.False(t, c.NATS.NkeysSeedInline())
	require.ErrorContains(t, c.Validate(), "nats.nkeys_seed")

	// The password needs a user name.
	c = DefaultConfig()
	c.NATS.Password = "p"
	require.ErrorContains(t, c.Validate(), "nats.password")
}

func TestCheckPlaybookDir(t *testing.T) {
	c := DefaultConfig()
	c.Worker.PlaybookDirectory = t.TempDir()
	require.NoError(t, c.CheckPlaybookDir())
	c.Worker.PlaybookDirectory = filepath.Join(t.TempDir(), "missing")
	require.ErrorContains(t, c.CheckPlaybookDir(), "worker.playbook_directory")
	f := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(f, nil, 0o600))
	c.Worker.PlaybookDirectory = f
	require.ErrorContains(t, c.CheckPlaybookDir(), "not a directory")

	// Validate does not look at the directory.
	c.Worker.PlaybookDirectory = "/nonexistent/playbooks"
	require.NoError(t, c.Validate())
}

func TestClientServers(t *testing.T) {
	c := DefaultConfig()
	c.NATS.Embedded.Enabled = true
	c.NATS.Embedded.Listen = "127.0.0.1:4333"
	require.Equal(t, []string{"nats://127.0.0.1:4333"}, c.ClientServers())
	c.NATS.Embedded.Listen = "0.0.0.0:4333"
	require.Equal(t, []string{"nats://127.0.0.1:4333"}, c.ClientServers())
	c.NATS.Embedded.Listen = ":4333"
	require.Equal(t, []string{"nats://127.0.0.1:4333"}, c.ClientServers())
	c.NATS.Embedded.Listen = "[::]:4333"
	require.Equal(t, []string{"nats://[::1]:4333"}, c.ClientServers())
	c.NATS.Servers = StringList{"nats://remote:4222"}
	require.Equal(t, []string{"nats://remote:4222"}, c.ClientServers())
	c.ClientServers()[0] = "changed"
	require.Equal(t, "nats://remote:4222", c.NATS.Servers[0])
}

func TestSubjectID(t *testing.T) {
	c := DefaultConfig()
	c.Worker.GroupName = "production"
	require.Equal(t, "production", c.SubjectID())
	c.NATS.SubjectID = "custom"
	require.Equal(t, "custom", c.SubjectID())
	c.NATS.SubjectID = "hostname"
	host, err := os.Hostname()
	require.NoError(t, err)
	require.Equal(t, strings.ReplaceAll(host, ".", "-"), c.SubjectID())
	require.NotContains(t, c.SubjectID(), ".")

	c2, err := LoadConfig("", envMap{EnvSubjectID: "hostname"}.lookup)
	require.NoError(t, err)
	require.Equal(t, strings.ReplaceAll(host, ".", "-"), c2.SubjectID())
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"nats://u:p@h:4222":        "nats://u:******@h:4222",
		"nats://tok@h:4222":        "nats://******@h:4222",
		"nats://h:4222":            "nats://h:4222",
		"h:4222":                   "h:4222",
		"u:p@h":                    "u:******@h",
		"nats://u:p@h:4222/x@y":    "nats://u:******@y", // the last '@' ends the user info
		"wss://u:p:still@h/path":   "wss://u:******@h/path",
		"nats://u:p%40ss@h":        "nats://u:******@h",
		"nats://u:p@s@h:4222":      "nats://u:******@h:4222",
		"":                         "",
		"tls://[::1]:4222":         "tls://[::1]:4222",
		"nats://u:@h:4222":         "nats://u:******@h:4222",
		"nats://user:pass@[::1]:1": "nats://user:******@[::1]:1",
	} {
		require.Equal(t, want, RedactURL(in), in)
	}
}

// configKeys lists every dotted key of the configuration.
func configKeys(t reflect.Type, prefix string) []string {
	var out []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		key := joinKey(prefix, name)
		out = append(out, key)
		if f.Type.Kind() == reflect.Struct {
			out = append(out, configKeys(f.Type, key)...)
		}
	}
	return out
}

// nodeKeys lists the dotted keys present in a YAML mapping.
func nodeKeys(n *yaml.Node, prefix string, into map[string]bool) {
	if n.Kind == yaml.DocumentNode {
		nodeKeys(n.Content[0], prefix, into)
		return
	}
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key := joinKey(prefix, n.Content[i].Value)
		into[key] = true
		nodeKeys(n.Content[i+1], key, into)
	}
}

func TestExamples(t *testing.T) {
	t.Chdir("..") // the examples name paths from the repository root, as the README runs them
	c, err := LoadConfig(filepath.Join("examples", "config.yaml"), envMap{}.lookup)
	require.NoError(t, err)
	require.True(t, c.NATS.Embedded.Enabled)
	require.Equal(t, "127.0.0.1:4222", c.NATS.Embedded.Listen)
	require.Equal(t, "127.0.0.1:1883", c.NATS.Embedded.MQTTListen)
	require.Equal(t, "./data", c.NATS.Embedded.StoreDir)
	require.Equal(t, "./examples/playbooks", c.Worker.PlaybookDirectory)
	require.Equal(t, "production", c.Worker.GroupName)
	require.Equal(t, []string{"nats://127.0.0.1:4222"}, c.ClientServers())

	svc, err := LoadConfig(filepath.Join("examples", "systemd", "config.yaml"), envMap{}.lookup)
	require.NoError(t, err)
	require.Equal(t, "/var/cache/ansible-worker", svc.Worker.DataDir, "the unit's CacheDirectory")
	require.Equal(t, []string{"nats://127.0.0.1:4222"}, svc.ClientServers())
	require.Empty(t, svc.LogFile, "the journal by default")

	jobs, err := LoadConfig(filepath.Join("examples", "config.jobs.yaml"), envMap{}.lookup)
	require.NoError(t, err)
	require.True(t, jobs.Worker.AllowRunnerJobs)
	require.Equal(t, "jobs", jobs.Worker.GroupName)
	require.Equal(t, []string{"nats://127.0.0.1:4222"}, jobs.ClientServers(), "the quick start's server")

	full := filepath.Join("examples", "config.full.yaml")
	c, err = LoadConfig(full, envMap{}.lookup)
	require.NoError(t, err)
	def := DefaultConfig()
	def.File = full
	def.Worker.DataDir = c.Worker.DataDir // depends on the machine
	def.Worker.AllowPlaybooks = []string{}
	def.NATS.Servers = StringList{}
	def.NATS.Headers = map[string]string{}
	require.Equal(t, def, c, "config.full.yaml shows the defaults")

	// config.full.yaml and docs/configuration.md name every key.
	data, err := os.ReadFile(full)
	require.NoError(t, err)
	var root yaml.Node
	require.NoError(t, yaml.Unmarshal(data, &root))
	present := map[string]bool{}
	nodeKeys(&root, "", present)
	docs, err := os.ReadFile(filepath.Join("docs", "configuration.md"))
	require.NoError(t, err)
	for _, k := range configKeys(reflect.TypeFor[Config](), "") {
		require.True(t, present[k], "examples/config.full.yaml lacks %s", k)
		require.Contains(t, string(docs), "`"+k+"`", "docs/configuration.md lacks %s", k)
	}
	for _, v := range []string{EnvServers, EnvSubjectID, EnvHeaders, EnvUsername, EnvPassword, EnvToken,
		EnvUserCredentials, EnvNkeysSeed, EnvClientName, EnvClientVerbose, EnvAllowReconnect, EnvConnectTimeout,
		EnvReconnectTimeWait, EnvPingInterval, EnvFlushTimeout, EnvMaxReconnectAttempts, EnvMaxOutstandingPings,
		EnvFlusherQueueSize, EnvPendingSize} {
		require.Contains(t, string(docs), "`"+v+"`", "docs/configuration.md lacks %s", v)
	}
}
