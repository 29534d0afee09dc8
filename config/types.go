package config

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nkeys"
	"go.yaml.in/yaml/v3"
)

// Config is the whole configuration of ansible-worker: the YAML file, with
// ${VAR} expanded, and the RUNNER_NATS_* environment variables over it.
// Obtain one with LoadConfig or DefaultConfig.
//
// A field's unit tag ("seconds", "bytes") is for the messages of a value
// of the wrong type.
type Config struct {
	// LogLevel is DEBUG, INFO, WARNING (or WARN), ERROR or CRITICAL, in
	// any case. Default INFO.
	LogLevel string `yaml:"log_level"`
	// LogFormat is text (default) or json.
	LogFormat string `yaml:"log_format"`
	// LogFile is the file logs are appended to; "" means stderr.
	LogFile string `yaml:"log_file"`
	// LogLevels sets the level of some components (see LogComponents)
	// over LogLevel, with the same level names. Default empty.
	LogLevels map[string]string `yaml:"log_levels"`
	// MQTT is the connection to an external MQTT broker, for the gateway.
	MQTT MQTTConfig `yaml:"mqtt"`
	// Worker holds what the worker runs and how.
	Worker WorkerConfig `yaml:"worker"`
	// NATS holds the NATS client settings and the embedded server.
	NATS NATSConfig `yaml:"nats"`

	// File is the configuration file that was read, "" when none was. It
	// is not a configuration key.
	File string `yaml:"-"`
	// ExpandedVars are the environment variables the file referred to with
	// ${VAR}: they may hold secrets, so playbooks do not inherit them. It is
	// not a configuration key.
	ExpandedVars []string `yaml:"-"`
	// ExpandedKeys are the keys ("nats.password", "nats.servers[0]") whose
	// value in the file got text from a ${VAR} reference: Masked and YAML
	// hide them, and everything under them. It is not a configuration key.
	ExpandedKeys []string `yaml:"-"`
	// expandedValues are the non-empty texts those references gave, and
	// the whole values they were in: errors never repeat them.
	expandedValues []string
}

// MQTTConfig is the mqtt section: an external MQTT broker, used by
// "ansible-worker gateway", and by "ansible-worker run" (which runs the
// gateway in-process) when Host is set. See mqtt.go for what is derived
// from it.
type MQTTConfig struct {
	// Host is the broker's host name or IP address, without scheme or
	// port. Default "": no external broker, so run starts no gateway and
	// gateway refuses to start (see Enabled).
	Host string `yaml:"host"`
	// Port is the broker's port. Default 1883.
	Port int `yaml:"port"`
	// Username is the MQTT user name ("" = anonymous).
	Username string `yaml:"username"`
	// Password is the MQTT password (a secret).
	Password string `yaml:"password"`
	// Keepalive is the MQTT keep-alive in seconds. Default 60.
	Keepalive int `yaml:"keepalive" unit:"seconds"`
	// TLSEnabled connects with TLS.
	TLSEnabled bool `yaml:"tls_enabled"`
	// TLSCAFile is a PEM file of CAs to trust instead of the system ones.
	TLSCAFile string `yaml:"tls_ca_file"`
	// TLSCertFile is a PEM client certificate, for brokers that require
	// one; it needs TLSKeyFile.
	TLSCertFile string `yaml:"tls_cert_file"`
	// TLSKeyFile is the PEM private key of TLSCertFile. The path is not a
	// secret but the content is: it is only ever handed to crypto/tls,
	// never put in a message or in printed output.
	TLSKeyFile string `yaml:"tls_key_file"`
	// ClientID is the MQTT client id; "" lets the program derive one (see
	// Config.MQTTClientID).
	ClientID string `yaml:"client_id"`
	// SessionExpiry is the MQTT 5 session expiry interval in seconds: how
	// long the broker keeps the session, and the messages queued for it,
	// after the connection drops. 0 ends the session with the connection,
	// so tasks published while the gateway is away are lost. 0 to
	// 4294967295. Default 86400 (one day).
	SessionExpiry int `yaml:"session_expiry" unit:"seconds"`
}

// KeepaliveDuration returns Keepalive as a time.Duration.
func (m MQTTConfig) KeepaliveDuration() time.Duration { return seconds(float64(m.Keepalive)) }

// SessionExpiryDuration returns SessionExpiry as a time.Duration.
func (m MQTTConfig) SessionExpiryDuration() time.Duration { return seconds(float64(m.SessionExpiry)) }

// Addr returns host:port of the broker.
func (m MQTTConfig) Addr() string { return net.JoinHostPort(m.Host, strconv.Itoa(m.Port)) }

// Enabled reports whether an external broker is configured (Host is
// set): only then does run start the gateway, and gateway start at all.
func (m MQTTConfig) Enabled() bool { return m.Host != "" }

// WorkerConfig is the worker section.
type WorkerConfig struct {
	// GroupName is the worker group: tasks are submitted per group and
	// every worker of a group shares its queue. Default "production", the group of every example in the contract.
	GroupName string `yaml:"group_name"`
	// PlaybookDirectory holds the playbooks and inventories. Default ".".
	PlaybookDirectory string `yaml:"playbook_directory"`
	// TopicPrefix is the first token of task subjects and MQTT topics.
	// Default "ansible".
	TopicPrefix string `yaml:"topic_prefix"`
	// MaxQueueSize bounds the tasks waiting in the group's queue; 0 means
	// no bound. Default 100.
	MaxQueueSize int `yaml:"max_queue_size"`
	// TaskTimeout is the default task timeout in seconds; 0 means none.
	// Default 3600.
	TaskTimeout int `yaml:"task_timeout" unit:"seconds"`
	// Concurrency is how many playbooks this worker runs at once. Default 1.
	Concurrency int `yaml:"concurrency"`
	// MaxDeliver is how many times a task is delivered before it is given
	// up. Default 3.
	MaxDeliver int `yaml:"max_deliver"`
	// AnsiblePlaybook is the ansible-playbook executable (a name looked up
	// in PATH, or a path). Default "ansible-playbook".
	AnsiblePlaybook string `yaml:"ansible_playbook"`
	// JobsFile is a YAML file of named jobs; "" means none.
	JobsFile string `yaml:"jobs_file"`
	// AllowPlaybooks restricts the playbooks tasks may run (paths relative
	// to PlaybookDirectory, path.Match patterns allowed); empty allows all,
	// false none (the group runs named jobs only).
	AllowPlaybooks PlaybookPatterns `yaml:"allow_playbooks"`
	// AllowExtraVars lists extra var names tasks may set although they
	// start with ansible_ or are names Ansible reserves; empty: none.
	AllowExtraVars []string `yaml:"allow_extra_vars"`
	// AllowLimitRegex lets a task's limit use "~regex" host patterns.
	// Default false.
	AllowLimitRegex bool `yaml:"allow_limit_regex"`
	// AllowInventoryScripts keeps Ansible's script inventory plugin on for
	// tasks, so an executable inventory is run. Default false.
	AllowInventoryScripts bool `yaml:"allow_inventory_scripts"`
	// MaxForks bounds a task's forks. Default 50.
	MaxForks int `yaml:"max_forks"`
	// MaxTaskTimeout bounds a task's own timeout, and every run, in
	// seconds; 0 means no bound. Default 0.
	MaxTaskTimeout int `yaml:"max_task_timeout" unit:"seconds"`
	// HTTPListen is host:port of the metrics and health endpoint; "" means
	// none.
	HTTPListen string `yaml:"http_listen"`
	// WorkerID names this worker in statuses; "" means
	// "<hostname>-<pid>" (see ID).
	WorkerID string `yaml:"worker_id"`
	// StatusInterval is the time in seconds between status updates of a
	// running task. Default 2.
	StatusInterval float64 `yaml:"status_interval" unit:"seconds"`
	// ShutdownGrace is how long in seconds running tasks may take to
	// finish after SIGINT/SIGTERM before they are handed back. Default 30.
	ShutdownGrace float64 `yaml:"shutdown_grace" unit:"seconds"`
	// KillGrace is the time in seconds between SIGINT and SIGKILL when a
	// playbook is stopped. Default 10.
	KillGrace float64 `yaml:"kill_grace" unit:"seconds"`
	// GitTimeout bounds a task's git pull, in seconds. Default 60.
	GitTimeout float64 `yaml:"git_timeout" unit:"seconds"`
	// AckWait is how long in seconds a task may go without a heartbeat
	// before JetStream redelivers it to another worker: the longest a task
	// of a dead worker waits. A property of the group's consumer, so every
	// worker of a group should use the same value. Default 30.
	AckWait float64 `yaml:"ack_wait" unit:"seconds"`
	// DataDir is a scratch directory for per-task files and the callback
	// plugin, private to the worker's user. Default DefaultDataDir().
	DataDir string `yaml:"data_dir"`
	// EventColor keeps Ansible's ANSI colours in the stdout of the
	// published events, as in ansible-runner's; false gives plain text.
	// Default true.
	EventColor bool `yaml:"event_color"`
	// AllowRunnerJobs lets tasks ship their own private data directory
	// (runner_job, `submit --private-data-dir`): its project runs as code
	// on the worker host. Default false.
	AllowRunnerJobs bool `yaml:"allow_runner_jobs"`
	// WarmStart forks each playbook from a process that imported Ansible
	// once (Linux, ansible-playbook a Python script); false starts every
	// playbook cold. Default true.
	WarmStart bool `yaml:"warm_start"`
}

// TaskTimeoutDuration returns TaskTimeout as a time.Duration (0 = none).
func (w WorkerConfig) TaskTimeoutDuration() time.Duration { return seconds(float64(w.TaskTimeout)) }

// StatusIntervalDuration returns StatusInterval as a time.Duration.
func (w WorkerConfig) StatusIntervalDuration() time.Duration { return seconds(w.StatusInterval) }

// ShutdownGraceDuration returns ShutdownGrace as a time.Duration.
func (w WorkerConfig) ShutdownGraceDuration() time.Duration { return seconds(w.ShutdownGrace) }

// KillGraceDuration returns KillGrace as a time.Duration.
func (w WorkerConfig) KillGraceDuration() time.Duration { return seconds(w.KillGrace) }

// AckWaitDuration returns AckWait as a time.Duration.
func (w WorkerConfig) AckWaitDuration() time.Duration { return seconds(w.AckWait) }

// GitTimeoutDuration returns GitTimeout as a time.Duration.
func (w WorkerConfig) GitTimeoutDuration() time.Duration { return seconds(w.GitTimeout) }

// PlaybookPatterns is worker.allow_playbooks: path.Match patterns of the
// playbooks tasks may name (empty: every playbook), or false, kept as the
// one element playbooksOff: tasks may run named jobs only.
type PlaybookPatterns []string

// playbooksOff stands for allow_playbooks: false; it matches no path.
const playbooksOff = "\x00false"

// Off reports whether allow_playbooks is false.
func (p PlaybookPatterns) Off() bool { return len(p) == 1 && p[0] == playbooksOff }

// Patterns returns the patterns; none when Off.
func (p PlaybookPatterns) Patterns() []string {
	if p.Off() {
		return nil
	}
	return p
}

// UnmarshalYAML implements yaml.Unmarshaler: a list, or a boolean (true:
// every playbook, false: none).
func (p *PlaybookPatterns) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" {
		var b bool
		if err := n.Decode(&b); err != nil {
			return err
		}
		*p = PlaybookPatterns{}
		if !b {
			*p = PlaybookPatterns{playbooksOff}
		}
		return nil
	}
	var items []string
	if err := n.Decode(&items); err != nil {
		return err
	}
	*p = items
	return nil
}

// MarshalYAML implements yaml.Marshaler: false when Off.
func (p PlaybookPatterns) MarshalYAML() (any, error) {
	if p.Off() {
		return false, nil
	}
	return []string(p), nil
}

// StringList is a list of strings that YAML may give as a sequence or as
// one comma-separated string ("a, b" is ["a", "b"]).
type StringList []string

// UnmarshalYAML implements yaml.Unmarshaler.
func (l *StringList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			*l = nil
			return nil
		}
		*l = splitList(n.Value)
		return nil
	case yaml.SequenceNode:
		var items []string
		if err := n.Decode(&items); err != nil {
			// Unwrapped: the YAML library reports a *yaml.TypeError
			// returned as is with the other problems of the file.
			return err
		}
		out := StringList{}
		for _, it := range items {
			out = append(out, splitList(it)...)
		}
		*l = out
		return nil
	}
	return fmt.Errorf("line %d: expected a list or a comma-separated string", n.Line)
}

// splitList splits a comma-separated list, dropping spaces around items
// and empty items.
func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// NATSConfig is the nats section: the NATS client settings of
// ansible-runner's NATS event emitter, plus replicas and the embedded server.
type NATSConfig struct {
	// Servers are the NATS server URLs (RUNNER_NATS_SERVERS).
	Servers StringList `yaml:"servers"`
	// SubjectID is the {subject_id} token of pub.ansible.runner subjects
	// (RUNNER_NATS_SUBJECT_ID); see Config.SubjectID.
	SubjectID string `yaml:"subject_id"`
	// Headers are sent with every runner status and event
	// (RUNNER_NATS_HEADERS).
	Headers map[string]string `yaml:"headers"`
	// Options are the client options (nats-py connect() keywords).
	Options NATSClientOptions `yaml:"options"`
	// Username and Password authenticate with a user and password.
	Username string `yaml:"username"`
	// Password is a secret.
	Password string `yaml:"password"`
	// Token authenticates with a token (a secret).
	Token string `yaml:"token"`
	// UserCredentials is the path of a .creds file (JWT and nkey seed).
	UserCredentials string `yaml:"user_credentials"`
	// NkeysSeed is the path of an nkey seed file, or the seed itself
	// (a secret).
	NkeysSeed string `yaml:"nkeys_seed"`
	// TLS configures TLS to the servers.
	TLS NATSTLSConfig `yaml:"tls"`
	// Replicas is the replica count of the streams, bucket and consumers
	// this program creates, 1 to 5. Default 1.
	Replicas int `yaml:"replicas"`
	// StatusTTL is how long, in seconds, a task's status (and its claim)
	// is kept after its last update; 0 keeps them for ever. Default 0.
	StatusTTL float64 `yaml:"status_ttl" unit:"seconds"`
	// EventsMaxAge is how long, in seconds, runner events and statuses are
	// kept in ANSIBLE_EVENTS; 0 keeps them for ever. Default 604800 (7
	// days).
	EventsMaxAge float64 `yaml:"events_max_age" unit:"seconds"`
	// MQTTListener is host:port of the MQTT listener of the NATS server
	// the worker uses: every status change of the group's tasks is
	// published there, retained, on <prefix>/<group>/tasks/<id>/status.
	// "" means the embedded server's mqtt_listen when it runs, else none.
	MQTTListener string `yaml:"mqtt_listener"`
	// TasksMaxMsgSize is the largest message, in bytes (headers included),
	// the tasks stream ANSIBLE_TASKS stores; a larger publish is refused
	// with an error. Default 1048576 (schemas.MaxTaskSize).
	TasksMaxMsgSize int `yaml:"tasks_max_msg_size" unit:"bytes"`
	// TasksMaxBytes bounds the total size, in bytes, of ANSIBLE_TASKS; a
	// publish that would go beyond it is refused with an error (discard
	// new), nothing stored is dropped. The server reserves it in full. -1:
	// no limit. Default 268435456 (256 MiB).
	TasksMaxBytes int64 `yaml:"tasks_max_bytes" unit:"bytes"`
	// TasksMaxAge is how long, in seconds, a task may stay in ANSIBLE_TASKS
	// before the server removes it, run or not; 0 keeps tasks for ever.
	// Default 604800 (7 days).
	TasksMaxAge float64 `yaml:"tasks_max_age" unit:"seconds"`
	// JobsMaxAge is how long, in seconds, the files runner jobs ship and
	// the artifacts they send back are kept in the Object Store bucket
	// ansible_jobs when no one removes them; 0 keeps them for ever.
	// Default 86400 (1 day).
	JobsMaxAge float64 `yaml:"jobs_max_age" unit:"seconds"`
	// Embedded runs a NATS server inside the process.
	Embedded EmbeddedConfig `yaml:"embedded"`
}

// StatusTTLDuration returns StatusTTL as a time.Duration (0: for ever).
func (n NATSConfig) StatusTTLDuration() time.Duration { return seconds(n.StatusTTL) }

// EventsMaxAgeDuration returns EventsMaxAge as a time.Duration (0: for ever).
func (n NATSConfig) EventsMaxAgeDuration() time.Duration { return seconds(n.EventsMaxAge) }

// JobsMaxAgeDuration returns JobsMaxAge as a time.Duration (0: for ever).
func (n NATSConfig) JobsMaxAgeDuration() time.Duration { return seconds(n.JobsMaxAge) }

// TasksMaxAgeDuration returns TasksMaxAge as a time.Duration (0: for ever).
func (n NATSConfig) TasksMaxAgeDuration() time.Duration { return seconds(n.TasksMaxAge) }

// NkeysSeedInline reports whether NkeysSeed is a seed itself rather than
// the path of a seed file.
func (n NATSConfig) NkeysSeedInline() bool {
	if n.NkeysSeed == "" {
		return false
	}
	_, err := nkeys.FromSeed([]byte(strings.TrimSpace(n.NkeysSeed)))
	return err == nil
}

// NATSClientOptions are the NATS client options, named as nats-py's
// connect() keywords used by ansible-runner's NATS emitter. Times are in
// seconds. A zero value means the nats.go default.
type NATSClientOptions struct {
	// Name is the client connection name (RUNNER_NATS_CLIENT_NAME).
	Name string `yaml:"name"`
	// Verbose asks the server to acknowledge every protocol message.
	Verbose bool `yaml:"verbose"`
	// AllowReconnect: nil or true reconnects after a lost connection.
	AllowReconnect *bool `yaml:"allow_reconnect"`
	// ConnectTimeout bounds each connection attempt. Default 2.
	ConnectTimeout float64 `yaml:"connect_timeout" unit:"seconds"`
	// ReconnectTimeWait is the wait between reconnect attempts to the
	// same server. Default 2.
	ReconnectTimeWait float64 `yaml:"reconnect_time_wait" unit:"seconds"`
	// PingInterval is the time between client pings. Default 120.
	PingInterval float64 `yaml:"ping_interval" unit:"seconds"`
	// FlushTimeout bounds a write of buffered data to the socket.
	// Default 60.
	FlushTimeout float64 `yaml:"flush_timeout" unit:"seconds"`
	// MaxReconnectAttempts: nil or -1 reconnects forever. Default -1.
	MaxReconnectAttempts *int `yaml:"max_reconnect_attempts"`
	// MaxOutstandingPings is the number of unanswered pings after which
	// the connection is stale. Default 2.
	MaxOutstandingPings int `yaml:"max_outstanding_pings"`
	// FlusherQueueSize is accepted for compatibility and has no effect
	// (nats.go has no flusher queue). Default 1024.
	FlusherQueueSize int `yaml:"flusher_queue_size"`
	// PendingSize is the number of bytes buffered while reconnecting;
	// -1 disables the buffer. Default 8388608.
	PendingSize int `yaml:"pending_size" unit:"bytes"`
}

// ConnectTimeoutDuration returns ConnectTimeout as a time.Duration.
func (o NATSClientOptions) ConnectTimeoutDuration() time.Duration { return seconds(o.ConnectTimeout) }

// ReconnectTimeWaitDuration returns ReconnectTimeWait as a time.Duration.
func (o NATSClientOptions) ReconnectTimeWaitDuration() time.Duration {
	return seconds(o.ReconnectTimeWait)
}

// PingIntervalDuration returns PingInterval as a time.Duration.
func (o NATSClientOptions) PingIntervalDuration() time.Duration { return seconds(o.PingInterval) }

// FlushTimeoutDuration returns FlushTimeout as a time.Duration.
func (o NATSClientOptions) FlushTimeoutDuration() time.Duration { return seconds(o.FlushTimeout) }

// NATSTLSConfig is nats.tls.
type NATSTLSConfig struct {
	// CAFile is a PEM file of CAs that sign the servers' certificates.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate and key (PEM).
	CertFile string `yaml:"cert_file"`
	// KeyFile is the client certificate's private key.
	KeyFile string `yaml:"key_file"`
	// ServerName overrides the name checked in the server certificate.
	ServerName string `yaml:"server_name"`
	// HandshakeFirst starts TLS before the server's INFO (the server
	// must be configured with handshake_first too).
	HandshakeFirst bool `yaml:"handshake_first"`
}

// Enabled reports whether any TLS setting is given.
func (t NATSTLSConfig) Enabled() bool {
	return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" || t.HandshakeFirst
}

// EmbeddedConfig is nats.embedded: a NATS server run inside the worker.
type EmbeddedConfig struct {
	// Enabled starts the embedded server.
	Enabled bool `yaml:"enabled"`
	// Listen is host:port for NATS clients; port 0 or -1 picks a free
	// one. Default "127.0.0.1:4222".
	Listen string `yaml:"listen"`
	// MQTTListen is host:port of the MQTT listener; "" means none.
	MQTTListen string `yaml:"mqtt_listen"`
	// StoreDir holds JetStream's data. Default "./data".
	StoreDir string `yaml:"store_dir"`
	// ConfigFile is a plain nats-server configuration file (cluster,
	// routes, accounts, limits); what it sets wins over Listen,
	// MQTTListen and StoreDir. "" means none.
	ConfigFile string `yaml:"config_file"`
}

// seconds converts a number of seconds to a time.Duration: 0 for a
// negative number or NaN, the longest duration for one too large.
func seconds(s float64) time.Duration {
	if s <= 0 || math.IsNaN(s) {
		return 0
	}
	if s >= float64(math.MaxInt64)/float64(time.Second) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(s * float64(time.Second))
}
