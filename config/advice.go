package config

import "fmt"

// clusterElection is the longest a JetStream asset of a cluster was seen
// without a leader after its server died (4 to 9 s in TestChaos), rounded
// up.
const clusterElection = 10.0

// clusterAckWait is the least ack_wait Advice recommends on a cluster:
// two thirds of it outlast an election with room to spare.
const clusterAckWait = 20.0

// Advice returns what in a valid configuration is likely to hurt, one
// sentence each: settings that work on one server but not across a
// cluster's failover.
func (c *Config) Advice() []string {
	var out []string
	// A running task's heartbeat comes every third of ack_wait; after a
	// server dies, the consumer's new leader redelivers a task whose last
	// heartbeat is older than ack_wait, while its worker still runs it.
	if c.NATS.Replicas > 1 && c.Worker.AckWait*2/3 < clusterElection {
		out = append(out, fmt.Sprintf("worker.ack_wait %g is short for nats.replicas %d: a leader election after a server dies (up to about %g s) can outlast the time between heartbeats (a third of ack_wait) and run a task twice; use %g or more",
			c.Worker.AckWait, c.NATS.Replicas, clusterElection, clusterAckWait))
	}
	return out
}
