package config

import (
	"math"
	"testing"
	"time"

	"github.com/ansible-worker/ansible-worker/schemas"
	"github.com/stretchr/testify/require"
)

// The tasks stream limits have safe defaults, are read from the file and
// refuse values the server would reject or that leave no room for a task.
func TestSecStreamLimitsConfig(t *testing.T) {
	def := DefaultConfig().NATS
	require.Equal(t, schemas.MaxTaskSize, def.TasksMaxMsgSize)
	require.Equal(t, int64(256<<20), def.TasksMaxBytes)
	require.Equal(t, 7*24*time.Hour, def.TasksMaxAgeDuration())

	c, err := load(t, "nats:\n  tasks_max_msg_size: 4096\n  tasks_max_bytes: -1\n  tasks_max_age: 0\n", envMap{})
	require.NoError(t, err)
	require.Equal(t, 4096, c.NATS.TasksMaxMsgSize)
	require.Equal(t, int64(-1), c.NATS.TasksMaxBytes)
	require.Equal(t, time.Duration(0), c.NATS.TasksMaxAgeDuration())

	for _, tc := range []struct {
		set  func(*NATSConfig)
		want string
	}{
		{func(n *NATSConfig) { n.TasksMaxMsgSize = 0 }, "nats.tasks_max_msg_size: must be 1 to 2147483647 bytes, got 0"},
		{func(n *NATSConfig) { n.TasksMaxMsgSize = math.MaxInt32 + 1 }, "nats.tasks_max_msg_size: must be 1 to"},
		{func(n *NATSConfig) { n.TasksMaxBytes = 0 }, "nats.tasks_max_bytes: must be -1 (no limit) or at least nats.tasks_max_msg_size (1048576 bytes), got 0"},
		{func(n *NATSConfig) { n.TasksMaxBytes = 1000 }, "nats.tasks_max_bytes: must be -1"},
		{func(n *NATSConfig) { n.TasksMaxAge = 0.5 }, "nats.tasks_max_age: must be 0 (for ever) or 1 second or more"},
		{func(n *NATSConfig) { n.TasksMaxAge = -1 }, "nats.tasks_max_age"},
		{func(n *NATSConfig) { n.TasksMaxAge = math.NaN() }, "nats.tasks_max_age"},
		{func(n *NATSConfig) { n.TasksMaxAge = math.Inf(1) }, "nats.tasks_max_age"},
	} {
		c := DefaultConfig()
		tc.set(&c.NATS)
		require.ErrorContains(t, c.Validate(), tc.want)
	}
}
