// Package jsbridge is everything NATS: connection, embedded server, streams,
// KV, events, MQTT gateway.
package jsbridge
