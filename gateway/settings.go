package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"

	"github.com/eclipse/paho.golang/autopaho"

	"github.com/ansible-worker/ansible-worker/config"
)

// SettingsError is a connection the broker refused because of the mqtt
// settings: trying again cannot help. It never holds a secret.
type SettingsError struct {
	// Key names the setting to look at ("mqtt.tls_ca_file").
	Key string
	// Err says what went wrong.
	Err error
}

func (e *SettingsError) Error() string { return e.Key + ": " + e.Err.Error() }

func (e *SettingsError) Unwrap() error { return e.Err }

// CONNACK reason codes of MQTT 5 that say the settings are wrong.
const (
	rcUnsupportedVersion = 0x84
	rcBadClientID        = 0x85
	rcBadCredentials     = 0x86
	rcNotAuthorized      = 0x87
	rcBadAuthMethod      = 0x8C
	rcSessionTakenOver   = 0x8E
)

// settingsProblem returns the SettingsError err is, or nil when err may go
// away by itself (the broker down, a network error).
func settingsProblem(err error, m config.MQTTConfig) *SettingsError {
	addr := m.Addr()
	var ce *autopaho.ConnackError
	if errors.As(err, &ce) {
		return connackProblem(ce.ReasonCode, addr)
	}
	var (
		hostErr   x509.HostnameError
		authErr   x509.UnknownAuthorityError
		certErr   x509.CertificateInvalidError
		verifyErr *tls.CertificateVerificationError
		recordErr tls.RecordHeaderError
		opErr     *net.OpError
	)
	switch {
	case errors.As(err, &hostErr):
		return &SettingsError{"mqtt.host", fmt.Errorf("the certificate of the broker at %s is not valid for %s: %w", addr, m.Host, hostErr)}
	case errors.As(err, &authErr):
		return &SettingsError{"mqtt.tls_ca_file", fmt.Errorf("the certificate of the broker at %s is not signed by a trusted CA (%s): %w", addr, caSource(m), authErr)}
	case errors.As(err, &certErr):
		return &SettingsError{"mqtt.tls_ca_file", fmt.Errorf("the certificate of the broker at %s is not valid: %w", addr, certErr)}
	case errors.As(err, &verifyErr):
		return &SettingsError{"mqtt.tls_ca_file", fmt.Errorf("the certificate of the broker at %s cannot be verified: %w", addr, verifyErr.Err)}
	case errors.As(err, &recordErr):
		return &SettingsError{"mqtt.tls_enabled", fmt.Errorf("the broker at %s does not answer in TLS: is %d a plain MQTT port?", addr, m.Port)}
	case errors.As(err, &opErr) && opErr.Op == "remote error": // a TLS alert from the broker
		return &SettingsError{"mqtt.tls_cert_file", fmt.Errorf("the broker at %s ended the TLS handshake (%w): it may want a client certificate it trusts (mqtt.tls_cert_file, mqtt.tls_key_file)", addr, opErr.Err)}
	}
	return nil
}

// connackProblem returns the SettingsError of a CONNACK reason code, nil
// for one that may go away (server busy or unavailable, quotas).
func connackProblem(rc byte, addr string) *SettingsError {
	switch rc {
	case rcBadCredentials:
		return &SettingsError{"mqtt.username/mqtt.password", fmt.Errorf("the broker at %s refused the user name or password (CONNACK reason 0x86)", addr)}
	case rcNotAuthorized: // what mosquitto answers to a wrong password
		return &SettingsError{"mqtt.username/mqtt.password", fmt.Errorf("the broker at %s does not authorize this user name and password (CONNACK reason 0x87)", addr)}
	case rcBadAuthMethod:
		return &SettingsError{"mqtt.username", fmt.Errorf("the broker at %s wants another authentication method (CONNACK reason 0x8C)", addr)}
	case rcBadClientID:
		return &SettingsError{"mqtt.client_id", fmt.Errorf("the broker at %s refused the client id (CONNACK reason 0x85)", addr)}
	case rcUnsupportedVersion:
		return &SettingsError{"mqtt.host", fmt.Errorf("the broker at %s does not speak MQTT 5, which the gateway needs for shared subscriptions (CONNACK reason 0x84)", addr)}
	}
	return nil
}

// caSource says which CAs verify the broker.
func caSource(m config.MQTTConfig) string {
	if m.TLSCAFile != "" {
		return "those of mqtt.tls_ca_file"
	}
	return "the system's CAs, as mqtt.tls_ca_file is not set"
}
