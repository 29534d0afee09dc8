package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// maxClientIDLength bounds mqtt.client_id, in characters. MQTT 5 allows
// up to 65535 bytes, but brokers commonly cap client ids far lower; 128 is
// enough for any sensible name and still fits them.
const maxClientIDLength = 128

// TLSConfig returns the TLS configuration for the broker: nil, nil when
// mqtt.tls_enabled is false. The server certificate is checked against
// Host, with the CAs of mqtt.tls_ca_file, else the system ones, and the
// client certificate of mqtt.tls_cert_file and mqtt.tls_key_file is
// presented when they are set. Every problem is returned, joined, each
// naming its key; the messages name the files, never what they hold.
func (m MQTTConfig) TLSConfig() (*tls.Config, error) {
	if !m.TLSEnabled {
		return nil, nil
	}
	roots, caErr := m.rootCAs()
	certs, certErr := m.clientCertificates()
	if err := errors.Join(caErr, certErr); err != nil {
		return nil, err
	}
	return &tls.Config{
		ServerName:   m.Host,
		RootCAs:      roots,
		Certificates: certs,
		// TLS 1.0 and 1.1 are broken and long deprecated (RFC 8996).
		MinVersion: tls.VersionTLS12,
	}, nil
}

// rootCAs returns the CAs of mqtt.tls_ca_file; nil, nil when it is not
// set, which makes crypto/tls use the system ones.
func (m MQTTConfig) rootCAs() (*x509.CertPool, error) {
	if m.TLSCAFile == "" {
		return nil, nil
	}
	data, err := os.ReadFile(m.TLSCAFile)
	if err != nil {
		return nil, fmt.Errorf("mqtt.tls_ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		// An empty pool would reject every server, with an error that
		// does not say the file is at fault.
		return nil, fmt.Errorf("mqtt.tls_ca_file: no PEM certificate in %s", m.TLSCAFile)
	}
	return pool, nil
}

// clientCertificates returns the client certificate of mqtt.tls_cert_file
// and mqtt.tls_key_file; nil, nil when neither is set. The errors of
// crypto/tls name the PEM block types at most, never the key's bytes.
func (m MQTTConfig) clientCertificates() ([]tls.Certificate, error) {
	switch {
	case m.TLSCertFile == "" && m.TLSKeyFile == "":
		return nil, nil
	case m.TLSKeyFile == "":
		return nil, errors.New("mqtt.tls_cert_file: is set but mqtt.tls_key_file is empty")
	case m.TLSCertFile == "":
		return nil, errors.New("mqtt.tls_key_file: is set but mqtt.tls_cert_file is empty")
	}
	cert, err := tls.LoadX509KeyPair(m.TLSCertFile, m.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("mqtt.tls_cert_file/mqtt.tls_key_file: %w", err)
	}
	return []tls.Certificate{cert}, nil
}

// MQTTClientID returns the client id the gateway connects to the broker
// with: mqtt.client_id when it is set, else
// "ansible-worker-<group>-<host>", where host is this machine's host name
// with every character outside A-Z a-z 0-9 _ - replaced by "-", cut to
// 128 characters.
//
// The derived id is stable across restarts on purpose: the broker keeps a
// persistent session (subscriptions, and messages queued while the gateway
// is away) per client id, and a restarted gateway must find it again. For
// the same reason two gateways of one group on one host would share an id,
// and the broker would drop one whenever the other connects: each must set
// its own mqtt.client_id.
func (c *Config) MQTTClientID() string {
	if c.MQTT.ClientID != "" {
		return c.MQTT.ClientID
	}
	id := sanitizeID("ansible-worker-" + c.Worker.GroupName + "-" + sanitizeID(hostname()))
	if len(id) > maxClientIDLength {
		id = id[:maxClientIDLength]
	}
	return id
}
