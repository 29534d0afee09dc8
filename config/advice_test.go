package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAdviceOnShortAckWaitInACluster(t *testing.T) {
	c := DefaultConfig()
	require.Empty(t, c.Advice(), "defaults need no advice")
	c.Worker.AckWait = 5
	require.Empty(t, c.Advice(), "one replica: no election to outlast")
	c.NATS.Replicas = 3
	advice := c.Advice()
	require.Len(t, advice, 1)
	require.Contains(t, advice[0], "worker.ack_wait 5 is short for nats.replicas 3")
	require.Contains(t, advice[0], "use 20 or more")
	c.Worker.AckWait = 20
	require.Empty(t, c.Advice())
}
