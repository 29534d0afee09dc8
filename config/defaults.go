package config

import (
	"os"
	"path/filepath"
	"strconv"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// DefaultConfig returns the configuration used when no file and no
// environment variable say otherwise.
func DefaultConfig() *Config {
	allow := true
	maxReconnect := -1
	return &Config{
		LogLevel:  "INFO",
		LogFormat: "text",
		LogLevels: map[string]string{},
		MQTT: MQTTConfig{
			Port:      1883,
			Keepalive: 60,
			// A day: the gateway may be away for a restart or an
			// upgrade without the tasks published meanwhile being lost.
			SessionExpiry: 24 * 3600,
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
			EventColor:        true,
			WarmStart:         true,
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
			JobsMaxAge:      24 * 3600,
			Embedded: EmbeddedConfig{
				Listen:   "127.0.0.1:4222",
				StoreDir: "./data",
			},
		},
	}
}

// DefaultDataDir is the default worker.data_dir, a directory private to the
// worker's user: ansible-worker in the user's cache directory
// ($XDG_CACHE_HOME, else $HOME/.cache), or <os temp dir>/ansible-worker-<uid>
// when there is neither.
func DefaultDataDir() string {
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "ansible-worker")
	}
	return filepath.Join(os.TempDir(), "ansible-worker-"+strconv.Itoa(os.Geteuid()))
}
