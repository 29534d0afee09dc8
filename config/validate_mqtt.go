package config

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"
)

// validateMQTT returns the problems of the mqtt section.
func validateMQTT(m MQTTConfig) problems {
	var p problems
	if m.Host != "" {
		if err := checkBrokerHost(m.Host); err != nil {
			p.addf("mqtt.host: %w", err)
		}
	}
	if m.Port < 1 || m.Port > 65535 {
		p.addf("mqtt.port: %d is not a port number (1-65535)", m.Port)
	}
	if m.Keepalive < 0 || m.Keepalive > 65535 {
		p.addf("mqtt.keepalive: %d is not 0 to 65535 seconds (MQTT keeps it in 16 bits)", m.Keepalive)
	}
	checkMQTTTLS(&p, m)
	checkClientID(&p, m.ClientID)
	// The broker gets the interval as a four-byte integer.
	if m.SessionExpiry < 0 || int64(m.SessionExpiry) > math.MaxUint32 {
		p.addf("mqtt.session_expiry: must be 0 to %d seconds, got %d", uint32(math.MaxUint32), m.SessionExpiry)
	}
	return p
}

// checkBrokerHost checks mqtt.host: a host name or an IP address alone,
// since the port has its own key and TLS is chosen by mqtt.tls_enabled.
// Its messages do not name the key.
func checkBrokerHost(h string) error {
	switch {
	case strings.Contains(h, "://"):
		return fmt.Errorf("%q is a URL: give the host name alone (the port goes in mqtt.port, TLS in mqtt.tls_enabled)", h)
	case isIPAddress(h):
		return nil
	}
	if _, _, err := net.SplitHostPort(h); err == nil {
		return fmt.Errorf("%q has a port: give the host name alone and the port in mqtt.port", h)
	}
	if !validHostName(h) {
		return fmt.Errorf("%q is not a host name or IP address", h)
	}
	return nil
}

// isIPAddress reports whether s is an IPv4 or IPv6 address (with a zone,
// "fe80::1%eth0", allowed), without brackets.
func isIPAddress(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// validHostName reports whether s is a DNS host name: dot-separated
// labels of 1 to 63 letters, digits, '-' and '_' (common in internal
// names), not starting or ending with '-', 253 characters at most, with
// an optional final dot.
func validHostName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if !validLabel(label) {
			return false
		}
	}
	return true
}

// validLabel reports whether s is one label of a host name.
func validLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := range len(s) {
		ch := s[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_') {
			return false
		}
	}
	return true
}

// checkMQTTTLS checks the TLS files: each one set needs mqtt.tls_enabled
// and must exist, the CAs must parse, and the certificate and key must
// come together and load as a pair. A file that does not exist is not
// parsed, so that it is not reported twice.
func checkMQTTTLS(p *problems, m MQTTConfig) {
	caOK := checkTLSFile(p, "mqtt.tls_ca_file", m.TLSCAFile, m.TLSEnabled)
	certOK := checkTLSFile(p, "mqtt.tls_cert_file", m.TLSCertFile, m.TLSEnabled)
	keyOK := checkTLSFile(p, "mqtt.tls_key_file", m.TLSKeyFile, m.TLSEnabled)
	if caOK {
		_, err := m.rootCAs()
		p.add(err)
	}
	// Loading the pair also reports a certificate without its key, or a
	// key without its certificate.
	if certOK && keyOK || (m.TLSCertFile == "") != (m.TLSKeyFile == "") {
		_, err := m.clientCertificates()
		p.add(err)
	}
}

// checkTLSFile checks the file name of key, when set: it needs
// mqtt.tls_enabled and must exist. It reports whether name is set and
// exists.
func checkTLSFile(p *problems, key, name string, enabled bool) bool {
	if name == "" {
		return false
	}
	if !enabled {
		p.addf("%s: is set but mqtt.tls_enabled is false", key)
	}
	err := checkFile(key, name)
	p.add(err)
	return err == nil
}

// checkClientID checks mqtt.client_id when set. MQTT allows any UTF-8
// text, but control characters are unreadable in broker logs and
// maxClientIDLength is what brokers accept. The messages do not repeat
// the id: it may hold characters a terminal would act upon.
func checkClientID(p *problems, id string) {
	switch {
	case id == "":
	case !utf8.ValidString(id):
		p.addf("mqtt.client_id: must be valid UTF-8")
	case utf8.RuneCountInString(id) > maxClientIDLength:
		p.addf("mqtt.client_id: must be at most %d characters, got %d", maxClientIDLength, utf8.RuneCountInString(id))
	case strings.ContainsFunc(id, unicode.IsControl):
		p.addf("mqtt.client_id: must not contain control characters")
	}
}
