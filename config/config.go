package config

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/url"
	"os"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nkeys"

	"github.com/ansible-worker/ansible-worker/schemas"
	"go.yaml.in/yaml/v3"
)

// DefaultConfigFile is the file LoadConfig reads when no path is given and
// the file exists in the working directory.
const DefaultConfigFile = "config.yaml"

// SecretMask replaces every non-empty secret in Masked and YAML output.
const SecretMask = "******"

// DefaultNATSURL is the server a client connects to when neither
// nats.servers nor the embedded server is configured.
const DefaultNATSURL = "nats://127.0.0.1:4222"

// Config is the whole configuration of ansible-worker: the YAML file, with
// ${VAR} expanded, and the RUNNER_NATS_* environment variables over it.
// Obtain one with LoadConfig or DefaultConfig.
type Config struct {
	// LogLevel is DEBUG, INFO, WARNING (or WARN), ERROR or CRITICAL, in
	// any case. Default INFO.
	LogLevel string `yaml:"log_level"`
	// LogFormat is text (default) or json.
	LogFormat string `yaml:"log_format"`
	// LogFile is the file logs are appended to; "" means stderr.
	LogFile string `yaml:"log_file"`
	// MQTT is the connection to an external MQTT broker (gateway command).
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

// MQTTConfig is the mqtt section: an MQTT broker, as in the MQTT
// ansible-worker this project replaces.
type MQTTConfig struct {
	// Host is the broker's host name. Default "localhost".
	Host string `yaml:"host"`
	// Port is the broker's port. Default 1883.
	Port int `yaml:"port"`
	// Username is the MQTT user name ("" = anonymous).
	Username string `yaml:"username"`
	// Password is the MQTT password (a secret).
	Password string `yaml:"password"`
	// Keepalive is the MQTT keep-alive in seconds. Default 60.
	Keepalive int `yaml:"keepalive"`
	// TLSEnabled connects with TLS.
	TLSEnabled bool `yaml:"tls_enabled"`
	// TLSCAFile is a PEM file of CAs to trust instead of the system ones.
	TLSCAFile string `yaml:"tls_ca_file"`
	// ClientID is the MQTT client id; "" lets the program derive one.
	ClientID string `yaml:"client_id"`
}

// KeepaliveDuration returns Keepalive as a time.Duration.
func (m MQTTConfig) KeepaliveDuration() time.Duration { return seconds(float64(m.Keepalive)) }

// Addr returns host:port of the broker.
func (m MQTTConfig) Addr() string { return net.JoinHostPort(m.Host, strconv.Itoa(m.Port)) }

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
	TaskTimeout int `yaml:"task_timeout"`
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
	// to PlaybookDirectory, path.Match patterns allowed); empty allows all.
	AllowPlaybooks []string `yaml:"allow_playbooks"`
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
	MaxTaskTimeout int `yaml:"max_task_timeout"`
	// HTTPListen is host:port of the metrics and health endpoint; "" means
	// none.
	HTTPListen string `yaml:"http_listen"`
	// WorkerID names this worker in statuses; "" means
	// "<hostname>-<pid>" (see ID).
	WorkerID string `yaml:"worker_id"`
	// StatusInterval is the time in seconds between status updates of a
	// running task. Default 2.
	StatusInterval float64 `yaml:"status_interval"`
	// ShutdownGrace is how long in seconds running tasks may take to
	// finish after SIGINT/SIGTERM before they are handed back. Default 30.
	ShutdownGrace float64 `yaml:"shutdown_grace"`
	// KillGrace is the time in seconds between SIGINT and SIGKILL when a
	// playbook is stopped. Default 10.
	KillGrace float64 `yaml:"kill_grace"`
	// GitTimeout bounds a task's git pull, in seconds. Default 60.
	GitTimeout float64 `yaml:"git_timeout"`
	// AckWait is how long in seconds a task may go without a heartbeat
	// before JetStream redelivers it to another worker: the longest a task
	// of a dead worker waits. A property of the group's consumer, so every
	// worker of a group should use the same value. Default 30.
	AckWait float64 `yaml:"ack_wait"`
	// DataDir is a scratch directory for per-task files and the callback
	// plugin, private to the worker's user. Default DefaultDataDir().
	DataDir string `yaml:"data_dir"`
}

// ID returns WorkerID, or when it is empty "<hostname>-<pid>" with every
// character outside A-Z a-z 0-9 _ - replaced by "-", so it is a valid id.
func (w WorkerConfig) ID() string {
	if w.WorkerID != "" {
		return w.WorkerID
	}
	return sanitizeID(hostname()) + "-" + strconv.Itoa(os.Getpid())
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
	StatusTTL float64 `yaml:"status_ttl"`
	// EventsMaxAge is how long, in seconds, runner events and statuses are
	// kept in ANSIBLE_EVENTS; 0 keeps them for ever. Default 604800 (7
	// days).
	EventsMaxAge float64 `yaml:"events_max_age"`
	// TasksMaxMsgSize is the largest message, in bytes (headers included),
	// the tasks stream ANSIBLE_TASKS stores; a larger publish is refused
	// with an error. Default 1048576 (schemas.MaxTaskSize).
	TasksMaxMsgSize int `yaml:"tasks_max_msg_size"`
	// TasksMaxBytes bounds the total size, in bytes, of ANSIBLE_TASKS; a
	// publish that would go beyond it is refused with an error (discard
	// new), nothing stored is dropped. The server reserves it in full. -1:
	// no limit. Default 268435456 (256 MiB).
	TasksMaxBytes int64 `yaml:"tasks_max_bytes"`
	// TasksMaxAge is how long, in seconds, a task may stay in ANSIBLE_TASKS
	// before the server removes it, run or not; 0 keeps tasks for ever.
	// Default 604800 (7 days).
	TasksMaxAge float64 `yaml:"tasks_max_age"`
	// Embedded runs a NATS server inside the process.
	Embedded EmbeddedConfig `yaml:"embedded"`
}

// StatusTTLDuration returns StatusTTL as a time.Duration (0: for ever).
func (n NATSConfig) StatusTTLDuration() time.Duration { return seconds(n.StatusTTL) }

// EventsMaxAgeDuration returns EventsMaxAge as a time.Duration (0: for ever).
func (n NATSConfig) EventsMaxAgeDuration() time.Duration { return seconds(n.EventsMaxAge) }

// TasksMaxAgeDuration returns TasksMaxAge as a time.Duration (0: for ever).
func (n NATSConfig) TasksMaxAgeDuration() time.Duration { return seconds(n.TasksMaxAge) }

// checkTasksLimits checks the limits of the tasks stream.
func (n NATSConfig) checkTasksLimits() []error {
	var p []error
	if n.TasksMaxMsgSize < 1 || n.TasksMaxMsgSize > math.MaxInt32 {
		p = append(p, fmt.Errorf("nats.tasks_max_msg_size: must be 1 to %d bytes, got %d", math.MaxInt32, n.TasksMaxMsgSize))
	}
	if n.TasksMaxBytes != -1 && n.TasksMaxBytes < int64(n.TasksMaxMsgSize) {
		p = append(p, fmt.Errorf("nats.tasks_max_bytes: must be -1 (no limit) or at least nats.tasks_max_msg_size (%d bytes), got %d",
			n.TasksMaxMsgSize, n.TasksMaxBytes))
	}
	if !(n.TasksMaxAge == 0 || n.TasksMaxAge >= 1) || math.IsInf(n.TasksMaxAge, 0) {
		p = append(p, errors.New("nats.tasks_max_age: must be 0 (for ever) or 1 second or more"))
	}
	return p
}

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
	ConnectTimeout float64 `yaml:"connect_timeout"`
	// ReconnectTimeWait is the wait between reconnect attempts to the
	// same server. Default 2.
	ReconnectTimeWait float64 `yaml:"reconnect_time_wait"`
	// PingInterval is the time between client pings. Default 120.
	PingInterval float64 `yaml:"ping_interval"`
	// FlushTimeout bounds a write of buffered data to the socket.
	// Default 60.
	FlushTimeout float64 `yaml:"flush_timeout"`
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
	PendingSize int `yaml:"pending_size"`
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
}

// DefaultConfig returns the configuration used when no file and no
// environment variable say otherwise.
func DefaultConfig() *Config {
	allow := true
	maxReconnect := -1
	return &Config{
		LogLevel:  "INFO",
		LogFormat: "text",
		MQTT: MQTTConfig{
			Host:      "localhost",
			Port:      1883,
			Keepalive: 60,
		},
		Worker: WorkerConfig{
			GroupName:         "production",
			PlaybookDirectory: ".",
			TopicPrefix:       "ansible",
			MaxQueueSize:      100,
			TaskTimeout:       3600,
			Concurrency:       1,
			MaxDeliver:        3,
			AnsiblePlaybook:   "ansible-playbook",
			StatusInterval:    2,
			ShutdownGrace:     30,
			KillGrace:         10,
			AckWait:           30,
			GitTimeout:        60,
			DataDir:           DefaultDataDir(),
			MaxForks:          50,
			AllowExtraVars:    []string{},
		},
		NATS: NATSConfig{
			Options: NATSClientOptions{
				AllowReconnect:       &allow,
				ConnectTimeout:       2,
				ReconnectTimeWait:    2,
				PingInterval:         120,
				FlushTimeout:         60,
				MaxReconnectAttempts: &maxReconnect,
				MaxOutstandingPings:  2,
				FlusherQueueSize:     1024,
				PendingSize:          8 * 1024 * 1024,
			},
			Replicas:        1,
			EventsMaxAge:    7 * 24 * 3600,
			TasksMaxMsgSize: schemas.MaxTaskSize,
			TasksMaxBytes:   256 << 20,
			TasksMaxAge:     7 * 24 * 3600,
			Embedded: EmbeddedConfig{
				Listen:   "127.0.0.1:4222",
				StoreDir: "./data",
			},
		},
	}
}

// LoadConfig reads the configuration file at path, expands ${VAR} from
// env, applies the RUNNER_NATS_* environment variables over it and
// validates the result.
//
// An empty path means ./config.yaml when that file exists, else the
// defaults alone; a path given explicitly must exist. env looks a variable
// up the way os.LookupEnv does (nil means os.LookupEnv).
//
// In the file, ${NAME} is replaced by the variable's value in every scalar
// value (an unset variable is an error naming it and the line),
// ${NAME:-word} gives word when NAME is unset or empty, and $${ is a
// literal ${. A key the program does not know is an error naming the key
// and its line. Error messages never contain a secret: the secret fields,
// header values and URL user info, and what ${VAR} references gave, are
// masked (see Validate).
func LoadConfig(path string, env func(string) (string, bool)) (*Config, error) {
	if env == nil {
		env = os.LookupEnv
	}
	cfg := DefaultConfig()
	if path == "" {
		if st, err := os.Stat(DefaultConfigFile); err == nil && !st.IsDir() {
			path = DefaultConfigFile
		}
	}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("configuration file %s does not exist", path)
			}
			return nil, fmt.Errorf("reading configuration file: %w", err)
		}
		used := map[string]bool{}
		record := func(name string) (string, bool) {
			v, ok := env(name)
			if ok {
				used[name] = true
			}
			return v, ok
		}
		if err := decodeConfig(path, data, record, cfg); err != nil {
			return nil, cfg.redact(err)
		}
		cfg.File = path
		cfg.ExpandedVars = slices.Sorted(maps.Keys(used))
	}
	if err := cfg.applyEnv(env); err != nil {
		return nil, cfg.redact(err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err // redacted by Validate
	}
	return cfg, nil
}

// decodeConfig parses data, expands variables, checks that every key is
// known and decodes into cfg, which holds the defaults.
func decodeConfig(file string, data []byte, env func(string) (string, bool), cfg *Config) (err error) {
	// The YAML library is third-party code fed with user input: turn a
	// panic in it into an error rather than crashing the program.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: cannot parse the YAML: %v", file, r)
		}
	}()
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return yamlError(file, err)
	}
	if root.Kind == 0 || (root.Kind == yaml.DocumentNode && len(root.Content) == 0) {
		return nil // empty file: defaults
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode {
		doc = doc.Content[0]
	}
	if doc.Kind == yaml.ScalarNode && doc.ShortTag() == "!!null" {
		return nil // a file with only comments or "~"
	}
	if doc.Kind != yaml.MappingNode {
		return fmt.Errorf("%s:%d: the configuration must be a mapping of keys to values", file, doc.Line)
	}
	x := &expansion{file: file, env: env, tainted: map[*yaml.Node]bool{}}
	x.node(doc, "")
	cfg.ExpandedKeys, cfg.expandedValues = x.keys, x.values
	if len(x.problems) > 0 {
		return errors.Join(x.problems...)
	}
	var problems []error
	checkKeys(doc, reflect.TypeFor[Config](), "", file, map[keyVisit]bool{}, &problems)
	if len(problems) > 0 {
		return errors.Join(problems...)
	}
	if err := doc.Decode(cfg); err != nil {
		return yamlError(file, err)
	}
	return nil
}

var (
	yamlLine      = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)
	yamlTypeError = regexp.MustCompile("^cannot unmarshal (\\S+)(?: `.*`)? into (.+)$")
)

// yamlError rewrites the YAML library's "line N: msg" errors as
// "file:N: msg", one error per problem. The value in a type error is left
// out: it may be a secret put in the wrong place.
func yamlError(file string, err error) error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	out := make([]error, 0, len(msgs))
	for _, m := range msgs {
		if sm := yamlLine.FindStringSubmatch(m); sm != nil {
			msg := m[len(sm[0]):]
			if tm := yamlTypeError.FindStringSubmatch(msg); tm != nil {
				msg = fmt.Sprintf("cannot use a %s value as %s", tm[1], tm[2])
			}
			out = append(out, fmt.Errorf("%s:%s: %s", file, sm[1], msg))
		} else {
			out = append(out, fmt.Errorf("%s: %s", file, strings.TrimPrefix(m, "yaml: ")))
		}
	}
	return errors.Join(out...)
}

var varRef = regexp.MustCompile(`\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}|\$\{`)

// expansion is the state of the ${VAR} expansion of a file: its problems,
// and what the references gave, so that Masked, YAML and errors can hide
// it.
type expansion struct {
	file     string
	env      func(string) (string, bool)
	problems []error
	// keys are the keys whose value got text from a reference.
	keys []string
	// values are those texts and the whole values they are in.
	values []string
	// tainted are the nodes holding such a value, for aliases.
	tainted map[*yaml.Node]bool
}

// node replaces ${VAR} in every scalar value under n (not in keys), which
// is at key at, and reports whether a value under n got text from a
// reference. Aliases are not followed: the anchored node is expanded where
// it is defined, and an alias of a node holding such a value is recorded
// whole (a merge key "<<" records the mapping it is in).
func (x *expansion) node(n *yaml.Node, at string) bool {
	got := false
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for i, c := range n.Content {
			p := at
			if n.Kind == yaml.SequenceNode {
				p = fmt.Sprintf("%s[%d]", at, i)
			}
			got = x.node(c, p) || got
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, p := n.Content[i], at
			if k.Value != "<<" || k.ShortTag() != "!!merge" {
				p = joinKey(at, k.Value)
			}
			got = x.node(n.Content[i+1], p) || got
		}
	case yaml.AliasNode:
		if got = x.tainted[n.Alias]; got {
			x.keys = append(x.keys, at)
		}
	case yaml.ScalarNode:
		got = x.scalar(n, at)
	}
	if got {
		x.tainted[n] = true
	}
	return got
}

// scalar expands the scalar n at key at and reports whether a reference
// gave it text.
func (x *expansion) scalar(n *yaml.Node, at string) bool {
	if !strings.Contains(n.Value, "${") {
		return false
	}
	out, pieces, err := expandString(n.Value, x.env)
	if err != nil {
		where := ""
		if at != "" {
			where = " (" + at + ")"
		}
		x.problems = append(x.problems, fmt.Errorf("%s:%d%s: %w", x.file, n.Line, where, err))
		return false
	}
	n.Value = out
	// A plain scalar takes the type of what it now says, so that
	// "port: ${PORT}" is an int; a quoted one stays a string.
	if n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle|yaml.TaggedStyle) == 0 {
		n.Tag = ""
	}
	if len(pieces) == 0 {
		return false
	}
	x.keys = append(x.keys, at)
	x.values = append(append(x.values, out), pieces...)
	return true
}

// expandString expands ${NAME}, ${NAME:-word} and $${ in s. It also
// returns the non-empty texts the references gave.
func expandString(s string, env func(string) (string, bool)) (string, []string, error) {
	var b strings.Builder
	var pieces []string
	var err error
	last := 0
	for _, m := range varRef.FindAllStringSubmatchIndex(s, -1) {
		b.WriteString(s[last:m[0]])
		last = m[1]
		tok := s[m[0]:m[1]]
		switch {
		case tok == "$${":
			b.WriteString("${")
		case m[2] < 0: // a "${" that is not a valid reference
			if err == nil {
				err = errors.New("invalid variable reference: use ${NAME} with NAME of A-Z a-z 0-9 _, or $${ for a literal ${")
			}
		default:
			name := s[m[2]:m[3]]
			v, ok := env(name)
			if m[4] >= 0 { // ${NAME:-word}
				if !ok || v == "" {
					v = s[m[4]+2 : m[5]]
				}
				ok = true
			}
			if !ok {
				if err == nil {
					err = fmt.Errorf("environment variable %s is not set", name)
				}
				continue
			}
			b.WriteString(v)
			if v != "" {
				pieces = append(pieces, v)
			}
		}
	}
	b.WriteString(s[last:])
	return b.String(), pieces, err
}

type keyVisit struct {
	n *yaml.Node
	t reflect.Type
}

var yamlUnmarshaler = reflect.TypeFor[yaml.Unmarshaler]()

// checkKeys reports every mapping key under n that type t does not have,
// with its line in the original file.
func checkKeys(n *yaml.Node, t reflect.Type, at, file string, seen map[keyVisit]bool, problems *[]error) {
	if n == nil {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if seen[keyVisit{n, t}] {
		return
	}
	seen[keyVisit{n, t}] = true
	if n.Kind == yaml.AliasNode {
		checkKeys(n.Alias, t, at, file, seen, problems)
		return
	}
	if reflect.PointerTo(t).Implements(yamlUnmarshaler) {
		return
	}
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge" {
				if v.Kind == yaml.SequenceNode {
					for _, c := range v.Content {
						checkKeys(c, t, at, file, seen, problems)
					}
				} else {
					checkKeys(v, t, at, file, seen, problems)
				}
				continue
			}
			ft, ok := fields[k.Value]
			if !ok {
				*problems = append(*problems, fmt.Errorf("%s:%d: unknown key %q", file, k.Line, joinKey(at, k.Value)))
				continue
			}
			checkKeys(v, ft, joinKey(at, k.Value), file, seen, problems)
		}
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			checkKeys(n.Content[i+1], t.Elem(), joinKey(at, n.Content[i].Value), file, seen, problems)
		}
	case (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && n.Kind == yaml.SequenceNode:
		for i, c := range n.Content {
			checkKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", at, i), file, seen, problems)
		}
	}
}

// yamlFields maps the YAML keys of struct type t to their field types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

func joinKey(at, k string) string {
	if at == "" {
		return k
	}
	return at + "." + k
}

// Environment variables of ansible-runner's NATS event emitter.
const (
	EnvServers              = "RUNNER_NATS_SERVERS"
	EnvSubjectID            = "RUNNER_NATS_SUBJECT_ID"
	EnvHeaders              = "RUNNER_NATS_HEADERS"
	EnvUsername             = "RUNNER_NATS_USERNAME"
	EnvPassword             = "RUNNER_NATS_PASSWORD"
	EnvToken                = "RUNNER_NATS_TOKEN"
	EnvUserCredentials      = "RUNNER_NATS_USER_CREDENTIALS"
	EnvNkeysSeed            = "RUNNER_NATS_NKEYS_SEED"
	EnvClientName           = "RUNNER_NATS_CLIENT_NAME"
	EnvClientVerbose        = "RUNNER_NATS_CLIENT_VERBOSE"
	EnvAllowReconnect       = "RUNNER_NATS_ALLOW_RECONNECT"
	EnvConnectTimeout       = "RUNNER_NATS_CONNECT_TIMEOUT"
	EnvReconnectTimeWait    = "RUNNER_NATS_RECONNECT_TIME_WAIT"
	EnvPingInterval         = "RUNNER_NATS_PING_INTERVAL"
	EnvFlushTimeout         = "RUNNER_NATS_FLUSH_TIMEOUT"
	EnvMaxReconnectAttempts = "RUNNER_NATS_MAX_RECONNECT_ATTEMPTS"
	EnvMaxOutstandingPings  = "RUNNER_MAX_OUTSTANDING_PINGS" // no NATS_ infix, as upstream
	EnvFlusherQueueSize     = "RUNNER_NATS_FLUSHER_QUEUE_SIZE"
	EnvPendingSize          = "RUNNER_NATS_PENDING_SIZE"
)

// applyEnv applies the RUNNER_NATS_* variables over c. An empty variable
// counts as unset. Error messages name the variable, never its value.
func (c *Config) applyEnv(env func(string) (string, bool)) error {
	get := func(name string) (string, bool) {
		v, ok := env(name)
		if !ok || strings.TrimSpace(v) == "" {
			return "", false
		}
		return v, true
	}
	str := func(name string, dst *string) {
		if v, ok := get(name); ok {
			*dst = v
		}
	}
	var problems []error
	float := func(name string, dst *float64) {
		if v, ok := get(name); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				problems = append(problems, fmt.Errorf("%s must be a number of seconds", name))
				return
			}
			*dst = f
		}
	}
	integer := func(name string) (int, bool) {
		v, ok := get(name)
		if !ok {
			return 0, false
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			problems = append(problems, fmt.Errorf("%s must be an integer", name))
			return 0, false
		}
		return n, true
	}
	o := &c.NATS.Options
	if v, ok := get(EnvServers); ok {
		c.NATS.Servers = splitList(v)
	}
	str(EnvSubjectID, &c.NATS.SubjectID)
	if v, ok := get(EnvHeaders); ok {
		h, err := ParseHeaders(v)
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", EnvHeaders, err))
		} else {
			if c.NATS.Headers == nil {
				c.NATS.Headers = map[string]string{}
			}
			maps.Copy(c.NATS.Headers, h)
		}
	}
	str(EnvUsername, &c.NATS.Username)
	str(EnvPassword, &c.NATS.Password)
	str(EnvToken, &c.NATS.Token)
	str(EnvUserCredentials, &c.NATS.UserCredentials)
	str(EnvNkeysSeed, &c.NATS.NkeysSeed)
	str(EnvClientName, &o.Name)
	if v, ok := get(EnvClientVerbose); ok {
		o.Verbose = truthy(v)
	}
	if v, ok := get(EnvAllowReconnect); ok {
		b := truthy(v)
		o.AllowReconnect = &b
	}
	float(EnvConnectTimeout, &o.ConnectTimeout)
	float(EnvReconnectTimeWait, &o.ReconnectTimeWait)
	float(EnvPingInterval, &o.PingInterval)
	float(EnvFlushTimeout, &o.FlushTimeout)
	if n, ok := integer(EnvMaxReconnectAttempts); ok {
		o.MaxReconnectAttempts = &n
	}
	if n, ok := integer(EnvMaxOutstandingPings); ok {
		o.MaxOutstandingPings = n
	}
	if n, ok := integer(EnvFlusherQueueSize); ok {
		o.FlusherQueueSize = n
	}
	if n, ok := integer(EnvPendingSize); ok {
		o.PendingSize = n
	}
	return errors.Join(problems...)
}

// ParseHeaders parses RUNNER_NATS_HEADERS: "k=v,k2=v2". Spaces around keys
// and values are dropped and a value may contain "=". Errors say which
// entry is wrong but never repeat a value.
func ParseHeaders(s string) (map[string]string, error) {
	out := map[string]string{}
	for i, part := range strings.Split(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("entry %d is not key=value", i+1)
		}
		out[k] = strings.TrimSpace(v)
	}
	return out, nil
}

// truthy is the boolean of ansible-runner's NATS emitter: true, yes, y, 1
// and on (any case) are true, anything else is false.
func truthy(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "y", "1", "on":
		return true
	}
	return false
}

func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// ParseLogLevel parses a log_level value: DEBUG, INFO, WARNING or WARN,
// ERROR, or CRITICAL (the same as ERROR), in any case.
func ParseLogLevel(s string) (slog.Level, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "DEBUG":
		return slog.LevelDebug, nil
	case "INFO", "":
		return slog.LevelInfo, nil
	case "WARNING", "WARN":
		return slog.LevelWarn, nil
	case "ERROR", "CRITICAL":
		return slog.LevelError, nil
	}
	return slog.LevelInfo, fmt.Errorf("unknown log level %q: use DEBUG, INFO, WARNING or ERROR", s)
}

// SlogLevel returns the slog level of LogLevel (INFO when it is unknown;
// Validate rejects unknown levels).
func (c *Config) SlogLevel() slog.Level {
	l, _ := ParseLogLevel(c.LogLevel)
	return l
}

// Validate checks the configuration and returns every problem at once,
// each naming its key, joined with errors.Join. It does not check that the
// playbook directory exists; see CheckPlaybookDir. The messages have
// every secret masked: the user info of URLs, the secret fields and header
// values, and the texts of 4 characters or more that ${VAR} references
// gave; errors.Is and errors.As still see the wrapped errors.
func (c *Config) Validate() error {
	var p []error
	add := func(format string, a ...any) { p = append(p, fmt.Errorf(format, a...)) }

	if _, err := ParseLogLevel(c.LogLevel); err != nil {
		add("log_level: %w", err)
	}
	switch strings.ToLower(c.LogFormat) {
	case "text", "json", "":
	default:
		add("log_format: unknown format %q: use text or json", c.LogFormat)
	}

	m := c.MQTT
	if m.Port < 1 || m.Port > 65535 {
		add("mqtt.port: %d is not a port number (1-65535)", m.Port)
	}
	if m.Keepalive < 0 {
		add("mqtt.keepalive: must be 0 or more seconds")
	}
	if m.TLSCAFile != "" {
		if !m.TLSEnabled {
			add("mqtt.tls_ca_file: is set but mqtt.tls_enabled is false")
		}
		checkFile(&p, "mqtt.tls_ca_file", m.TLSCAFile)
	}

	w := c.Worker
	if err := schemas.CheckID("worker.group_name", w.GroupName); err != nil {
		p = append(p, err)
	}
	if err := schemas.CheckID("worker.topic_prefix", w.TopicPrefix); err != nil {
		p = append(p, err)
	}
	if w.WorkerID != "" {
		if err := schemas.CheckID("worker.worker_id", w.WorkerID); err != nil {
			p = append(p, err)
		}
	}
	if w.PlaybookDirectory == "" {
		add("worker.playbook_directory: must not be empty")
	}
	if w.MaxQueueSize < 0 {
		add("worker.max_queue_size: must be 0 (no limit) or more")
	}
	if w.TaskTimeout < 0 {
		add("worker.task_timeout: must be 0 (none) or more seconds")
	}
	if w.Concurrency < 1 {
		add("worker.concurrency: must be 1 or more")
	}
	if w.MaxDeliver < 1 {
		add("worker.max_deliver: must be 1 or more")
	}
	if strings.TrimSpace(w.AnsiblePlaybook) == "" {
		add("worker.ansible_playbook: must not be empty")
	}
	if w.JobsFile != "" {
		checkFile(&p, "worker.jobs_file", w.JobsFile)
	}
	if w.MaxForks < 1 {
		add("worker.max_forks: must be 1 or more")
	}
	if w.MaxTaskTimeout < 0 {
		add("worker.max_task_timeout: must be 0 (no bound) or more seconds")
	} else if w.MaxTaskTimeout > 0 && (w.TaskTimeout == 0 || w.TaskTimeout > w.MaxTaskTimeout) {
		add("worker.task_timeout: %d is more than worker.max_task_timeout %d (0 means no timeout)", w.TaskTimeout, w.MaxTaskTimeout)
	}
	for i, name := range w.AllowExtraVars {
		if !schemas.ValidVarName(name) {
			add("worker.allow_extra_vars[%d]: %q is not a variable name", i, name)
		}
	}
	for i, pat := range w.AllowPlaybooks {
		if strings.TrimSpace(pat) == "" {
			add("worker.allow_playbooks[%d]: is empty", i)
		} else if _, err := path.Match(pat, ""); err != nil {
			add("worker.allow_playbooks[%d]: %q is not a valid pattern", i, pat)
		}
	}
	if w.HTTPListen != "" {
		if err := checkHostPort(w.HTTPListen, 0); err != nil {
			add("worker.http_listen: %w", err)
		}
	}
	positive := func(key string, v float64) {
		if !(v > 0) || math.IsInf(v, 0) {
			add("%s: must be more than 0 seconds", key)
		}
	}
	positive("worker.status_interval", w.StatusInterval)
	positive("worker.ack_wait", w.AckWait)
	nonNegative := func(key string, v float64) {
		if !(v >= 0) || math.IsInf(v, 0) {
			add("%s: must be 0 or more seconds", key)
		}
	}
	nonNegative("worker.shutdown_grace", w.ShutdownGrace)
	nonNegative("worker.kill_grace", w.KillGrace)
	nonNegative("worker.git_timeout", w.GitTimeout)
	if w.DataDir == "" {
		add("worker.data_dir: must not be empty")
	}

	n := c.NATS
	for i, s := range n.Servers {
		if err := checkServerURL(s); err != nil {
			add("nats.servers[%d]: %s %w", i, RedactURL(s), err)
		}
	}
	if n.SubjectID != "" && n.SubjectID != "hostname" {
		if err := schemas.CheckID("nats.subject_id", n.SubjectID); err != nil {
			p = append(p, err)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(n.Headers)) {
		switch {
		case k == "":
			add("nats.headers: a header name is empty")
		case !printable(k) || strings.ContainsAny(k, ": "):
			add("nats.headers: header name %q may contain only printable characters other than ':' and space", k)
		}
		if !printable(n.Headers[k]) {
			add("nats.headers.%s: the value may contain only printable characters", k)
		}
	}
	nonNegative("nats.status_ttl", n.StatusTTL)
	nonNegative("nats.events_max_age", n.EventsMaxAge)
	p = append(p, n.checkTasksLimits()...)
	o := n.Options
	nonNegative("nats.options.connect_timeout", o.ConnectTimeout)
	nonNegative("nats.options.reconnect_time_wait", o.ReconnectTimeWait)
	if math.IsNaN(o.PingInterval) || math.IsInf(o.PingInterval, 0) {
		add("nats.options.ping_interval: must be a number of seconds")
	}
	nonNegative("nats.options.flush_timeout", o.FlushTimeout)
	if o.MaxReconnectAttempts != nil && *o.MaxReconnectAttempts < -1 {
		add("nats.options.max_reconnect_attempts: must be -1 (forever) or more")
	}
	if o.MaxOutstandingPings < 0 {
		add("nats.options.max_outstanding_pings: must be 0 (default) or more")
	}
	if o.FlusherQueueSize < 0 {
		add("nats.options.flusher_queue_size: must be 0 or more")
	}
	if o.PendingSize < -1 {
		add("nats.options.pending_size: must be -1 (no buffer), 0 (default) or more bytes")
	}

	var methods []string
	if n.Token != "" {
		methods = append(methods, "nats.token")
	}
	if n.Username != "" || n.Password != "" {
		methods = append(methods, "nats.username/nats.password")
		if n.Username == "" {
			add("nats.password: is set but nats.username is empty")
		}
	}
	if n.NkeysSeed != "" {
		methods = append(methods, "nats.nkeys_seed")
		if n.NkeysSeedInline() {
			if kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(n.NkeysSeed))); err == nil {
				if pub, err := kp.PublicKey(); err != nil || !nkeys.IsValidPublicUserKey(pub) {
					add("nats.nkeys_seed: is not a user seed (it must start with SU)")
				}
			}
		} else {
			if st, err := os.Stat(n.NkeysSeed); err != nil || st.IsDir() {
				// The value may be a mistyped seed: never repeat it.
				add("nats.nkeys_seed: is neither an nkey seed nor a readable file")
			}
		}
	}
	if n.UserCredentials != "" {
		methods = append(methods, "nats.user_credentials")
		checkFile(&p, "nats.user_credentials", n.UserCredentials)
	}
	if len(methods) > 1 {
		add("nats: give only one way to authenticate, not %s", strings.Join(methods, " and "))
	}
	t := n.TLS
	if t.CAFile != "" {
		checkFile(&p, "nats.tls.ca_file", t.CAFile)
	}
	if t.CertFile != "" {
		checkFile(&p, "nats.tls.cert_file", t.CertFile)
	}
	if t.KeyFile != "" {
		checkFile(&p, "nats.tls.key_file", t.KeyFile)
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		add("nats.tls: cert_file and key_file must be given together")
	}
	if n.Replicas < 1 || n.Replicas > 5 {
		add("nats.replicas: %d is out of range 1-5", n.Replicas)
	}
	e := n.Embedded
	if e.Enabled {
		if err := checkHostPort(e.Listen, -1); err != nil {
			add("nats.embedded.listen: %w", err)
		}
		if e.MQTTListen != "" {
			if err := checkHostPort(e.MQTTListen, -1); err != nil {
				add("nats.embedded.mqtt_listen: %w", err)
			}
		}
		if e.StoreDir == "" {
			add("nats.embedded.store_dir: must not be empty")
		}
	}
	return c.redact(errors.Join(p...))
}

// CheckPlaybookDir returns an error unless worker.playbook_directory is an
// existing directory. Like Validate's, its errors never contain a secret.
func (c *Config) CheckPlaybookDir() error { return c.redact(c.checkPlaybookDir()) }

func (c *Config) checkPlaybookDir() error {
	st, err := os.Stat(c.Worker.PlaybookDirectory)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("worker.playbook_directory: %s does not exist", c.Worker.PlaybookDirectory)
		}
		return fmt.Errorf("worker.playbook_directory: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("worker.playbook_directory: %s is not a directory", c.Worker.PlaybookDirectory)
	}
	return nil
}

func checkFile(p *[]error, key, name string) {
	st, err := os.Stat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		*p = append(*p, fmt.Errorf("%s: %s does not exist", key, name))
	case err != nil:
		*p = append(*p, fmt.Errorf("%s: %w", key, err))
	case st.IsDir():
		*p = append(*p, fmt.Errorf("%s: %s is a directory", key, name))
	}
}

// checkHostPort checks a host:port listen address; the port may be as low
// as minPort (-1 or 0 pick a free port where that is allowed).
func checkHostPort(s string, minPort int) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < minPort || n > 65535 {
		return fmt.Errorf("%q: bad port %q", s, port)
	}
	return nil
}

// checkServerURL checks one NATS server URL. Its messages never contain
// the URL (the caller adds it, redacted).
func checkServerURL(s string) error {
	raw := s
	if !strings.Contains(raw, "://") {
		raw = "nats://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("is not a valid URL")
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return fmt.Errorf("has scheme %q: use nats, tls, ws or wss", u.Scheme)
	}
	if u.Hostname() == "" {
		return errors.New("has no host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return errors.New("has a bad port")
		}
	}
	return nil
}

func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// RedactURL hides the secret of a NATS server URL without parsing it, so
// that a URL that does not parse is redacted too. Its user info is
// everything between "scheme://" (or the start, without a scheme) and the
// last '@': the user name before the first ':' is kept and the rest
// becomes SecretMask; a user info without ':' is a token and becomes
// SecretMask whole. A string without '@' is returned unchanged.
func RedactURL(s string) string {
	prefix, rest := splitScheme(s)
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return s
	}
	if user, _, ok := strings.Cut(rest[:at], ":"); ok {
		return prefix + user + ":" + SecretMask + rest[at:]
	}
	return prefix + SecretMask + rest[at:]
}

// URLSecret returns what RedactURL hides in a server URL: the password, or
// the token, of its user info; "" when there is none.
func URLSecret(s string) string {
	_, rest := splitScheme(s)
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return ""
	}
	if _, pass, ok := strings.Cut(rest[:at], ":"); ok {
		return pass
	}
	return rest[:at]
}

var urlScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*$`)

// splitScheme splits s into "scheme://" and the rest. What comes before
// the first "://" is a scheme only if it looks like one (so that in
// "user:pa://ss@host" it is not).
func splitScheme(s string) (string, string) {
	i := strings.Index(s, "://")
	if i < 0 || !urlScheme.MatchString(s[:i]) {
		return "", s
	}
	return s[:i+3], s[i+3:]
}

// ClientServers returns the URLs a client connects to: nats.servers, else
// the embedded server's listen address when it is enabled, else
// DefaultNATSURL. An unspecified listen host (0.0.0.0, ::, "") becomes the
// loopback address.
func (c *Config) ClientServers() []string {
	if len(c.NATS.Servers) > 0 {
		return slices.Clone([]string(c.NATS.Servers))
	}
	if c.NATS.Embedded.Enabled && c.NATS.Embedded.Listen != "" {
		return []string{"nats://" + ConnectAddr(c.NATS.Embedded.Listen)}
	}
	return []string{DefaultNATSURL}
}

// ConnectAddr turns a listen address into one a client can dial: an
// unspecified host (0.0.0.0, ::, "") becomes 127.0.0.1 (or ::1).
func ConnectAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// SubjectID returns the {subject_id} token of the runner subjects:
// nats.subject_id (RUNNER_NATS_SUBJECT_ID), where "hostname" means this
// machine's host name with dots replaced by dashes, and empty means the
// group name.
func (c *Config) SubjectID() string {
	switch c.NATS.SubjectID {
	case "":
		return c.Worker.GroupName
	case "hostname":
		return sanitizeID(hostname())
	}
	return c.NATS.SubjectID
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return h
}

// sanitizeID replaces every character outside A-Z a-z 0-9 _ - by "-" and
// cuts the result to schemas.MaxIDLength.
func sanitizeID(s string) string {
	b := []byte(s)
	for i, ch := range b {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '_' || ch == '-') {
			b[i] = '-'
		}
	}
	if len(b) > schemas.MaxIDLength {
		b = b[:schemas.MaxIDLength]
	}
	if len(b) == 0 {
		return "localhost"
	}
	return string(b)
}

// Masked returns a deep copy of c with every non-empty secret replaced by
// SecretMask: nats.password, nats.token, nats.nkeys_seed, mqtt.password,
// the values of nats.headers, the password (or token) in server URLs, and
// every string that got text from a ${VAR} (see ExpandedKeys). A number or
// a boolean from a ${VAR} keeps its value here; YAML hides it too.
func (c *Config) Masked() *Config {
	m := maskedCopy(reflect.ValueOf(*c), "", c.hidden).Interface().(Config)
	m.expandedValues = slices.Clone(c.expandedValues)
	for _, s := range []*string{&m.NATS.Password, &m.NATS.Token, &m.NATS.NkeysSeed, &m.MQTT.Password} {
		if *s != "" {
			*s = SecretMask
		}
	}
	for k, v := range m.NATS.Headers {
		if v != "" {
			m.NATS.Headers[k] = SecretMask
		}
	}
	for i, s := range m.NATS.Servers {
		m.NATS.Servers[i] = RedactURL(s)
	}
	return &m
}

// hidden reports whether the value at key at, or a value it is part of,
// got text from a ${VAR}.
func (c *Config) hidden(at string) bool {
	for _, k := range c.ExpandedKeys {
		if k == "" || at == k || strings.HasPrefix(at, k) && (at[len(k)] == '.' || at[len(k)] == '[') {
			return true
		}
	}
	return false
}

// maskedCopy returns a deep copy of v, the value at key at, in which every
// non-empty string whose key hide reports is SecretMask. Keys are built as
// the ${VAR} expansion builds them; fields tagged yaml:"-" are copied, not
// masked.
func maskedCopy(v reflect.Value, at string, hide func(string) bool) reflect.Value {
	out := reflect.New(v.Type()).Elem()
	switch v.Kind() {
	case reflect.Struct:
		out.Set(v)
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			h := hide
			switch name {
			case "-":
				h = func(string) bool { return false }
			case "":
				name = strings.ToLower(f.Name)
			}
			out.Field(i).Set(maskedCopy(v.Field(i), joinKey(at, name), h))
		}
	case reflect.Pointer:
		if !v.IsNil() {
			out.Set(reflect.New(v.Type().Elem()))
			out.Elem().Set(maskedCopy(v.Elem(), at, hide))
		}
	case reflect.Slice:
		if !v.IsNil() {
			out.Set(reflect.MakeSlice(v.Type(), v.Len(), v.Len()))
			for i := range v.Len() {
				out.Index(i).Set(maskedCopy(v.Index(i), fmt.Sprintf("%s[%d]", at, i), hide))
			}
		}
	case reflect.Map:
		if !v.IsNil() {
			out.Set(reflect.MakeMapWithSize(v.Type(), v.Len()))
			for it := v.MapRange(); it.Next(); {
				key := joinKey(at, fmt.Sprint(it.Key().Interface()))
				out.SetMapIndex(it.Key(), maskedCopy(it.Value(), key, hide))
			}
		}
	case reflect.String:
		out.Set(v)
		if v.Len() > 0 && hide(at) {
			out.SetString(SecretMask)
		}
	default:
		out.Set(v)
	}
	return out
}

// YAML returns the effective configuration with secrets masked, as YAML
// (what "ansible-worker validate" prints): Masked, and every number or
// boolean that came from a ${VAR} printed as SecretMask as well.
func (c *Config) YAML() ([]byte, error) {
	var doc yaml.Node
	if err := doc.Encode(c.Masked()); err != nil {
		return nil, fmt.Errorf("encoding the configuration: %w", err)
	}
	maskNodes(&doc, "", c.hidden)
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("encoding the configuration: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encoding the configuration: %w", err)
	}
	return []byte(b.String()), nil
}

// maskNodes replaces every non-null scalar under n, which is at key at,
// by SecretMask where hide reports its key.
func maskNodes(n *yaml.Node, at string, hide func(string) bool) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			maskNodes(c, at, hide)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			maskNodes(c, fmt.Sprintf("%s[%d]", at, i), hide)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			maskNodes(n.Content[i+1], joinKey(at, n.Content[i].Value), hide)
		}
	case yaml.ScalarNode:
		if n.Value != "" && n.ShortTag() != "!!null" && hide(at) {
			n.SetString(SecretMask)
		}
	}
}

// minRedacted is the length under which a text from a ${VAR} is not
// masked in error messages, where it would garble words ("er" in
// "worker"). Secret fields are masked whatever their length.
const minRedacted = 4

// redactedError is an error whose message has a configuration's secrets
// masked; errors.Is and errors.As still see the original.
type redactedError struct {
	err error
	msg string
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redact returns err with every secret of c in its message masked (see
// redactText); nil stays nil.
func (c *Config) redact(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if clean := c.redactText(msg); clean != msg {
		return &redactedError{err: err, msg: clean}
	}
	return err
}

// urlInText finds what looks like a URL in a message.
var urlInText = regexp.MustCompile("[A-Za-z][A-Za-z0-9+.-]*://[^\\s\"'`]*")

// redactText masks in s the user info of every URL (c's servers, and
// anything that looks like a URL) and every text of c.secrets, as written
// and as %q writes it. A secret shorter than minRedacted is masked only
// where it is not part of a longer word.
func (c *Config) redactText(s string) string {
	for _, u := range c.NATS.Servers {
		if u != "" {
			s = strings.ReplaceAll(s, u, RedactURL(u))
		}
	}
	s = urlInText.ReplaceAllStringFunc(s, RedactURL)
	for _, v := range c.secrets() {
		forms := []string{v}
		if q := strconv.Quote(v); q[1:len(q)-1] != v {
			forms = append(forms, q[1:len(q)-1])
		}
		for _, f := range forms {
			if utf8.RuneCountInString(f) < minRedacted {
				s = replaceWord(s, f)
			} else {
				s = strings.ReplaceAll(s, f, SecretMask)
			}
		}
	}
	return s
}

// secrets returns the texts error messages must not contain, longest
// first: the secret fields, the header values and the URL secrets of c
// (whatever their length), and the texts from ${VAR} references of
// minRedacted characters or more.
func (c *Config) secrets() []string {
	out := []string{c.NATS.Password, c.NATS.Token, c.NATS.NkeysSeed, c.MQTT.Password}
	out = append(out, slices.Collect(maps.Values(c.NATS.Headers))...)
	for _, u := range c.NATS.Servers {
		out = append(out, URLSecret(u))
	}
	for _, v := range c.expandedValues {
		if utf8.RuneCountInString(v) >= minRedacted {
			out = append(out, v)
		}
	}
	out = slices.DeleteFunc(out, func(s string) bool { return s == "" })
	slices.SortFunc(out, func(a, b string) int {
		return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(a, b))
	})
	return slices.Compact(out)
}

// replaceWord replaces old by SecretMask in s wherever it is not part of a
// longer word (letters, digits and '_' on either side).
func replaceWord(s, old string) string {
	word := func(i int) bool {
		if i < 0 || i >= len(s) {
			return false
		}
		ch := s[i]
		return ch == '_' || ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= 0x80
	}
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); {
		j := strings.Index(s[i:], old)
		if j < 0 {
			break
		}
		j += i
		end := j + len(old)
		if word(j-1) || word(end) {
			i = j + 1
			continue
		}
		b.WriteString(s[last:j])
		b.WriteString(SecretMask)
		last, i = end, end
	}
	b.WriteString(s[last:])
	return b.String()
}

func seconds(s float64) time.Duration {
	if s <= 0 || math.IsNaN(s) {
		return 0
	}
	if s >= float64(math.MaxInt64)/float64(time.Second) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(s * float64(time.Second))
}
