package config

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// brokenConfig returns a configuration with problems in every section (no
// message holds a secret), and per section the start of each message
// Validate gives, in order.
func brokenConfig() (*Config, map[string][]string) {
	c := DefaultConfig()
	c.LogLevel = "loud"
	c.LogFormat = "xml"

	c.MQTT.Host = "mqtt://broker"
	c.MQTT.Port = 0
	c.MQTT.Keepalive = -1
	c.MQTT.TLSCAFile = "/nonexistent/ca.pem"
	c.MQTT.TLSCertFile = "/nonexistent/mqtt-cert.pem"
	c.MQTT.ClientID = "a\tb"
	c.MQTT.SessionExpiry = -1

	c.Worker.GroupName = "bad group"
	c.Worker.TopicPrefix = ""
	c.Worker.WorkerID = "a.b"
	c.Worker.PlaybookDirectory = ""
	c.Worker.MaxQueueSize = -1
	c.Worker.TaskTimeout = -1
	c.Worker.Concurrency = 0
	c.Worker.MaxDeliver = 0
	c.Worker.AnsiblePlaybook = ""
	c.Worker.JobsFile = "/nonexistent/jobs.yaml"
	c.Worker.MaxForks = 0
	c.Worker.MaxTaskTimeout = -1
	c.Worker.AllowExtraVars = []string{"1x"}
	c.Worker.AllowPlaybooks = []string{"[bad", " "}
	c.Worker.HTTPListen = "nope"
	c.Worker.StatusInterval = 0
	c.Worker.AckWait = math.Inf(1)
	c.Worker.ShutdownGrace = math.NaN()
	c.Worker.KillGrace = -1
	c.Worker.GitTimeout = -1
	c.Worker.DataDir = ""

	c.NATS.Servers = StringList{"ftp://h"}
	c.NATS.SubjectID = "a.b"
	c.NATS.Headers = map[string]string{"bad:key": "v"}
	c.NATS.StatusTTL = -1
	c.NATS.EventsMaxAge = math.NaN()
	c.NATS.TasksMaxMsgSize = 0
	c.NATS.TasksMaxBytes = -5
	c.NATS.TasksMaxAge = 0.5
	c.NATS.Options.ConnectTimeout = -1
	c.NATS.Options.PingInterval = math.Inf(-1)
	c.NATS.Options.MaxOutstandingPings = -1
	c.NATS.Options.PendingSize = -2
	c.NATS.Token = "t"
	c.NATS.Username = "user"
	c.NATS.UserCredentials = "/nonexistent/u.creds"
	c.NATS.TLS.CAFile = "/nonexistent/nats-ca.pem"
	c.NATS.TLS.CertFile = "/nonexistent/cert.pem"
	c.NATS.Replicas = 6
	c.NATS.Embedded.Enabled = true
	c.NATS.Embedded.Listen = "localhost"
	c.NATS.Embedded.MQTTListen = "127.0.0.1:99999"
	c.NATS.Embedded.StoreDir = ""

	return c, map[string][]string{
		"logging": {"log_level:", "log_format:"},
		"mqtt": {
			"mqtt.host:", "mqtt.port:", "mqtt.keepalive:", "mqtt.tls_ca_file: is set", "mqtt.tls_ca_file: /nonexistent",
			"mqtt.tls_cert_file: is set", "mqtt.tls_cert_file: /nonexistent",
			"mqtt.tls_cert_file: is set but mqtt.tls_key_file is empty", "mqtt.client_id:", "mqtt.session_expiry:",
		},
		"worker": {
			"worker.group_name ", "worker.topic_prefix ", "worker.worker_id ", "worker.playbook_directory:",
			"worker.max_queue_size:", "worker.task_timeout:", "worker.concurrency:", "worker.max_deliver:",
			"worker.ansible_playbook:", "worker.jobs_file:", "worker.max_forks:", "worker.max_task_timeout:",
			"worker.allow_extra_vars[0]:", "worker.allow_playbooks[0]:", "worker.allow_playbooks[1]:",
			"worker.http_listen:", "worker.status_interval:", "worker.ack_wait:", "worker.shutdown_grace:",
			"worker.kill_grace:", "worker.git_timeout:", "worker.data_dir:",
		},
		"nats": {
			"nats.servers[0]:", "nats.subject_id ", "nats.headers:", "nats.status_ttl:", "nats.events_max_age:",
			"nats.tasks_max_msg_size:", "nats.tasks_max_bytes:", "nats.tasks_max_age:",
			"nats.options.connect_timeout:", "nats.options.ping_interval:",
			"nats.options.max_outstanding_pings:", "nats.options.pending_size:",
			"nats.user_credentials:", "nats: give only one way to authenticate",
			"nats.tls.ca_file:", "nats.tls.cert_file:", "nats.tls: cert_file and key_file", "nats.replicas:",
			"nats.embedded.listen:", "nats.embedded.mqtt_listen:", "nats.embedded.store_dir:",
		},
	}
}

// requireProblems checks that got are exactly the problems whose messages
// start with want, in that order.
func requireProblems(t *testing.T, want []string, got problems) {
	t.Helper()
	msgs := make([]string, len(got))
	for i, err := range got {
		msgs[i] = err.Error()
	}
	require.Len(t, msgs, len(want), strings.Join(msgs, "\n"))
	for i, w := range want {
		require.True(t, strings.HasPrefix(msgs[i], w), "problem %d: want %q, got %q", i, w, msgs[i])
	}
}

// Each section's validation finds exactly that section's problems, and
// Validate reports them all, section after section.
func TestSectionValidators(t *testing.T) {
	c, want := brokenConfig()
	logging, mqtt, worker, nats := validateLogging(c), validateMQTT(c.MQTT), validateWorker(c.Worker), validateNATS(c.NATS)
	t.Run("logging", func(t *testing.T) { requireProblems(t, want["logging"], logging) })
	t.Run("mqtt", func(t *testing.T) { requireProblems(t, want["mqtt"], mqtt) })
	t.Run("worker", func(t *testing.T) { requireProblems(t, want["worker"], worker) })
	t.Run("nats", func(t *testing.T) { requireProblems(t, want["nats"], nats) })

	var all []string
	for _, p := range []problems{logging, mqtt, worker, nats} {
		for _, err := range p {
			all = append(all, err.Error())
		}
	}
	require.Equal(t, strings.Join(all, "\n"), c.Validate().Error())

	d := DefaultConfig()
	require.Empty(t, validateLogging(d))
	require.Empty(t, validateMQTT(d.MQTT))
	require.Empty(t, validateWorker(d.Worker))
	require.Empty(t, validateNATS(d.NATS))
}

// A task timeout over worker.max_task_timeout is a worker problem, and so
// is no timeout at all when there is a bound.
func TestValidateWorkerMaxTaskTimeout(t *testing.T) {
	w := DefaultConfig().Worker
	w.MaxTaskTimeout = 60
	requireProblems(t, []string{"worker.task_timeout: 3600 is more than worker.max_task_timeout 60"}, validateWorker(w))
	w.TaskTimeout = 0
	requireProblems(t, []string{"worker.task_timeout: 0 is more than"}, validateWorker(w))
	w.TaskTimeout = 60
	require.Empty(t, validateWorker(w))
}

// The inline nkey seed must be a user seed; a path must be a file.
func TestValidateNATSNkeysSeed(t *testing.T) {
	n := DefaultConfig().NATS
	n.NkeysSeed = "/nonexistent/seed.nk"
	requireProblems(t, []string{"nats.nkeys_seed: is neither an nkey seed nor a readable file"}, validateNATS(n))
	n.NkeysSeed = t.TempDir()
	requireProblems(t, []string{"nats.nkeys_seed: is neither"}, validateNATS(n))
}
