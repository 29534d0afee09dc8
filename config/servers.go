package config

import (
	"net"
	"slices"
)

// DefaultNATSURL is the server a client connects to when neither
// nats.servers nor the embedded server is configured.
const DefaultNATSURL = "nats://127.0.0.1:4222"

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
