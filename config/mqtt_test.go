package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// tlsFiles are PEM files made for a test: a CA, a client certificate it
// signed with its key, and a key that belongs to no certificate.
type tlsFiles struct {
	ca, cert, key, otherKey string
	// caCert is the CA, to check the pool TLSConfig builds.
	caCert *x509.Certificate
}

// newTLSFiles writes a CA, a client certificate and key, and another key
// in a fresh directory.
func newTLSFiles(t *testing.T) tlsFiles {
	t.Helper()
	dir := t.TempDir()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)

	clientKey := newKey(t)
	clientTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "gateway"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	clientDER, err := x509.CreateCertificate(rand.Reader, clientTmpl, caCert, &clientKey.PublicKey, caKey)
	require.NoError(t, err)

	f := tlsFiles{
		ca:       filepath.Join(dir, "ca.pem"),
		cert:     filepath.Join(dir, "cert.pem"),
		key:      filepath.Join(dir, "key.pem"),
		otherKey: filepath.Join(dir, "other-key.pem"),
		caCert:   caCert,
	}
	writePEM(t, f.ca, "CERTIFICATE", caDER)
	writePEM(t, f.cert, "CERTIFICATE", clientDER)
	writePEM(t, f.key, "PRIVATE KEY", keyDER(t, clientKey))
	writePEM(t, f.otherKey, "PRIVATE KEY", keyDER(t, newKey(t)))
	return f
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

func keyDER(t *testing.T, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	require.NoError(t, err)
	return der
}

func writePEM(t *testing.T, name, typ string, der []byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(name, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
}

// writeFile writes text to a fresh file and returns its name.
func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "file.pem")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
	return p
}

// validMQTT returns the default mqtt section with a broker host.
func validMQTT() MQTTConfig {
	m := DefaultConfig().MQTT
	m.Host = "broker.example.com"
	return m
}

func TestMQTTDefaults(t *testing.T) {
	m := DefaultConfig().MQTT
	require.Empty(t, m.Host)
	require.False(t, m.Enabled())
	require.Equal(t, 86400, m.SessionExpiry)
	require.Equal(t, 24*time.Hour, m.SessionExpiryDuration())
	require.Empty(t, validateMQTT(m))

	tc, err := m.TLSConfig()
	require.NoError(t, err)
	require.Nil(t, tc, "no TLS unless tls_enabled")

	m.Host = "broker"
	require.True(t, m.Enabled())
	m.SessionExpiry = 0
	require.Equal(t, time.Duration(0), m.SessionExpiryDuration())
}

func TestValidateMQTTHost(t *testing.T) {
	for _, tc := range []struct{ host, want string }{
		{"broker", ""},
		{"broker.example.com", ""},
		{"broker.example.com.", ""},
		{"mqtt_internal.lan", ""},
		{"10.0.0.1", ""},
		{"::1", ""},
		{"fe80::1%eth0", ""},
		{"mqtt://broker", `mqtt.host: "mqtt://broker" is a URL: give the host name alone`},
		{"tls://broker:8883", `mqtt.host: "tls://broker:8883" is a URL`},
		{"broker:1883", `mqtt.host: "broker:1883" has a port: give the host name alone and the port in mqtt.port`},
		{"[::1]:1883", `mqtt.host: "[::1]:1883" has a port`},
		{"[::1]", `mqtt.host: "[::1]" is not a host name or IP address`},
		{"my broker", `mqtt.host: "my broker" is not a host name or IP address`},
		{" broker", `mqtt.host: " broker" is not a host name or IP address`},
		{"-broker", `mqtt.host: "-broker" is not a host name`},
		{"a..b", `mqtt.host: "a..b" is not a host name`},
		{"broker/path", `mqtt.host: "broker/path" is not a host name`},
		{strings.Repeat("a", 64), `mqtt.host: "` + strings.Repeat("a", 64) + `" is not a host name`},
	} {
		m := validMQTT()
		m.Host = tc.host
		if tc.want == "" {
			require.Empty(t, validateMQTT(m), tc.host)
			continue
		}
		requireProblems(t, []string{tc.want}, validateMQTT(m))
	}
}

func TestValidateMQTTClientID(t *testing.T) {
	for _, tc := range []struct{ id, want string }{
		{"", ""},
		{"gateway-1", ""},
		{"ゲートウェイ/with spaces+#", ""},
		{strings.Repeat("é", 128), ""},
		{strings.Repeat("x", 129), "mqtt.client_id: must be at most 128 characters, got 129"},
		{"a\nb", "mqtt.client_id: must not contain control characters"},
		{"a\x00b", "mqtt.client_id: must not contain control characters"},
		{"a\u0085b", "mqtt.client_id: must not contain control characters"},
		{"a\xffb", "mqtt.client_id: must be valid UTF-8"},
	} {
		m := validMQTT()
		m.ClientID = tc.id
		if tc.want == "" {
			require.Empty(t, validateMQTT(m), tc.id)
			continue
		}
		requireProblems(t, []string{tc.want}, validateMQTT(m))
	}
}

func TestValidateMQTTSessionExpiry(t *testing.T) {
	for _, tc := range []struct {
		v    int
		want string
	}{
		{0, ""},
		{1, ""},
		{math.MaxUint32, ""},
		{-1, "mqtt.session_expiry: must be 0 to 4294967295 seconds, got -1"},
		{math.MaxUint32 + 1, "mqtt.session_expiry: must be 0 to 4294967295 seconds, got 4294967296"},
	} {
		m := validMQTT()
		m.SessionExpiry = tc.v
		if tc.want == "" {
			require.Empty(t, validateMQTT(m), tc.v)
			continue
		}
		requireProblems(t, []string{tc.want}, validateMQTT(m))
	}

	_, err := load(t, "mqtt:\n  session_expiry: 1.5\n", nil)
	require.ErrorContains(t, err, `mqtt.session_expiry: expected a whole number of seconds, got "1.5"`)
	_, err = load(t, "mqtt:\n  session_expiry: a day\n", nil)
	require.ErrorContains(t, err, `mqtt.session_expiry: expected a number of seconds, got "a day"`)
}

func TestValidateMQTTTLSFiles(t *testing.T) {
	f := newTLSFiles(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	noPEM := writeFile(t, "not a certificate\n")
	for _, tc := range []struct {
		name          string
		enabled       bool
		ca, cert, key string
		want          []string
	}{
		{name: "all good", enabled: true, ca: f.ca, cert: f.cert, key: f.key},
		{name: "CA alone", enabled: true, ca: f.ca},
		{name: "pair alone", enabled: true, cert: f.cert, key: f.key},
		{name: "TLS off", ca: f.ca, cert: f.cert, key: f.key, want: []string{
			"mqtt.tls_ca_file: is set but mqtt.tls_enabled is false",
			"mqtt.tls_cert_file: is set but mqtt.tls_enabled is false",
			"mqtt.tls_key_file: is set but mqtt.tls_enabled is false",
		}},
		{name: "missing files", enabled: true, ca: missing, cert: missing, key: missing, want: []string{
			"mqtt.tls_ca_file: " + missing + " does not exist",
			"mqtt.tls_cert_file: " + missing + " does not exist",
			"mqtt.tls_key_file: " + missing + " does not exist",
		}},
		{name: "directory", enabled: true, ca: t.TempDir(), want: []string{"mqtt.tls_ca_file: "}},
		{name: "CA without PEM", enabled: true, ca: noPEM, want: []string{
			"mqtt.tls_ca_file: no PEM certificate in " + noPEM,
		}},
		{name: "key file as CA", enabled: true, ca: f.key, want: []string{
			"mqtt.tls_ca_file: no PEM certificate in " + f.key,
		}},
		{name: "cert without key", enabled: true, cert: f.cert, want: []string{
			"mqtt.tls_cert_file: is set but mqtt.tls_key_file is empty",
		}},
		{name: "key without cert", enabled: true, key: f.key, want: []string{
			"mqtt.tls_key_file: is set but mqtt.tls_cert_file is empty",
		}},
		{name: "missing key without cert", enabled: true, key: missing, want: []string{
			"mqtt.tls_key_file: " + missing + " does not exist",
			"mqtt.tls_key_file: is set but mqtt.tls_cert_file is empty",
		}},
		{name: "key does not match", enabled: true, cert: f.cert, key: f.otherKey, want: []string{
			"mqtt.tls_cert_file/mqtt.tls_key_file: tls: private key does not match public key",
		}},
		{name: "switched", enabled: true, cert: f.key, key: f.cert, want: []string{
			"mqtt.tls_cert_file/mqtt.tls_key_file: tls: failed to find certificate PEM data",
		}},
		{name: "missing key with cert", enabled: true, cert: f.cert, key: missing, want: []string{
			"mqtt.tls_key_file: " + missing + " does not exist",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := validMQTT()
			m.TLSEnabled, m.TLSCAFile, m.TLSCertFile, m.TLSKeyFile = tc.enabled, tc.ca, tc.cert, tc.key
			requireProblems(t, tc.want, validateMQTT(m))
		})
	}
}

func TestMQTTTLSConfig(t *testing.T) {
	f := newTLSFiles(t)
	m := validMQTT()
	m.TLSEnabled = true

	// No CA file: the system CAs (nil), no client certificate.
	tc, err := m.TLSConfig()
	require.NoError(t, err)
	require.Equal(t, "broker.example.com", tc.ServerName)
	require.Nil(t, tc.RootCAs)
	require.Empty(t, tc.Certificates)
	require.Equal(t, uint16(tls.VersionTLS12), tc.MinVersion)
	require.False(t, tc.InsecureSkipVerify)

	m.TLSCAFile, m.TLSCertFile, m.TLSKeyFile = f.ca, f.cert, f.key
	tc, err = m.TLSConfig()
	require.NoError(t, err)
	want := x509.NewCertPool()
	want.AddCert(f.caCert)
	require.True(t, want.Equal(tc.RootCAs))
	require.Len(t, tc.Certificates, 1)
	leaf, err := x509.ParseCertificate(tc.Certificates[0].Certificate[0])
	require.NoError(t, err)
	require.Equal(t, "gateway", leaf.Subject.CommonName)

	// Every problem at once, each naming its key.
	m.TLSCAFile, m.TLSKeyFile = writeFile(t, "junk"), f.otherKey
	tc, err = m.TLSConfig()
	require.Nil(t, tc)
	require.ErrorContains(t, err, "mqtt.tls_ca_file: no PEM certificate in ")
	require.ErrorContains(t, err, "mqtt.tls_cert_file/mqtt.tls_key_file: ")
	m.TLSCAFile = filepath.Join(t.TempDir(), "gone.pem")
	_, err = m.TLSConfig()
	require.ErrorIs(t, err, os.ErrNotExist)
	require.ErrorContains(t, err, "mqtt.tls_ca_file: ")

	// tls_enabled false: no TLS, whatever the files.
	m.TLSEnabled = false
	tc, err = m.TLSConfig()
	require.NoError(t, err)
	require.Nil(t, tc)
}

// The content of the key file never reaches a message, whatever it holds.
func TestMQTTKeyContentNeverInMessages(t *testing.T) {
	f := newTLSFiles(t)
	const secret = "KEY-SECRET-CONTENT"
	wrongType := string(pem.EncodeToMemory(&pem.Block{Type: "SECRET THING", Bytes: []byte(secret)}))
	badKey := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte(secret)}))
	real, err := os.ReadFile(f.otherKey)
	require.NoError(t, err)
	for _, content := range []string{secret, wrongType, badKey, string(real)} {
		key := writeFile(t, content)
		c := DefaultConfig()
		c.MQTT = validMQTT()
		c.MQTT.TLSEnabled, c.MQTT.TLSCertFile, c.MQTT.TLSKeyFile = true, f.cert, key
		c.MQTT.TLSCAFile = key // read as CAs, too
		err := c.Validate()
		require.ErrorContains(t, err, "mqtt.tls_cert_file/mqtt.tls_key_file: ")
		_, tlsErr := c.MQTT.TLSConfig()
		for _, msg := range []string{err.Error(), tlsErr.Error()} {
			require.NotContains(t, msg, secret)
			for line := range strings.Lines(content) {
				if !strings.HasPrefix(line, "-----") && len(strings.TrimSpace(line)) > 8 {
					require.NotContains(t, msg, strings.TrimSpace(line))
				}
			}
		}
	}
}

// The new keys are known to the file check and printed by YAML; the
// password stays masked and the key file shows as a path only.
func TestMQTTKeysInFileAndYAML(t *testing.T) {
	f := newTLSFiles(t)
	c, err := load(t, `mqtt:
  host: broker.example.com
  password: mqtt-s3cret
  tls_enabled: true
  tls_ca_file: `+f.ca+`
  tls_cert_file: `+f.cert+`
  tls_key_file: `+f.key+`
  client_id: gw-1
  session_expiry: 3600
`, nil)
	require.NoError(t, err)
	require.Equal(t, f.cert, c.MQTT.TLSCertFile)
	require.Equal(t, f.key, c.MQTT.TLSKeyFile)
	require.Equal(t, time.Hour, c.MQTT.SessionExpiryDuration())
	require.Equal(t, "gw-1", c.MQTTClientID())

	out, err := c.YAML()
	require.NoError(t, err)
	text := string(out)
	require.NotContains(t, text, "mqtt-s3cret")
	require.Contains(t, text, "password: '"+SecretMask+"'")
	for _, want := range []string{
		"host: broker.example.com", "tls_cert_file: " + f.cert, "tls_key_file: " + f.key,
		"client_id: gw-1", "session_expiry: 3600",
	} {
		require.Contains(t, text, want)
	}
	key, err := os.ReadFile(f.key)
	require.NoError(t, err)
	for line := range strings.Lines(string(key)) {
		if !strings.HasPrefix(line, "-----") {
			require.NotContains(t, text, strings.TrimSpace(line))
		}
	}
}

// Problems of the new keys come out with the line of their key; the pair
// problem with that of tls_cert_file.
func TestMQTTProblemsInFile(t *testing.T) {
	f := newTLSFiles(t)
	path := writeConfig(t, `mqtt:
  host: broker:1883
  tls_enabled: true
  tls_cert_file: `+f.cert+`
  tls_key_file: `+f.otherKey+`
  client_id: "a\tb"
  session_expiry: -5
  tls_kye_file: x
`)
	_, err := LoadConfig(path, nil)
	require.Error(t, err)
	require.Equal(t, []string{
		path + `:2: mqtt.host: "broker:1883" has a port: give the host name alone and the port in mqtt.port`,
		path + `:4: mqtt.tls_cert_file/mqtt.tls_key_file: tls: private key does not match public key`,
		path + `:6: mqtt.client_id: must not contain control characters`,
		path + `:7: mqtt.session_expiry: must be 0 to 4294967295 seconds, got -5`,
		path + `:8: unknown key "mqtt.tls_kye_file"`,
	}, strings.Split(err.Error(), "\n"))
}

func TestMQTTClientID(t *testing.T) {
	host := sanitizeID(hostname())
	c := DefaultConfig()
	require.Equal(t, "ansible-worker-production-"+host, c.MQTTClientID())
	require.Equal(t, c.MQTTClientID(), c.MQTTClientID(), "stable")
	require.NotContains(t, c.MQTTClientID(), ".")

	c.Worker.GroupName = "staging"
	require.Equal(t, "ansible-worker-staging-"+host, c.MQTTClientID())

	// A long group name still gives an id within the bound.
	c.Worker.GroupName = strings.Repeat("g", 128)
	id := c.MQTTClientID()
	require.Len(t, id, maxClientIDLength)
	require.True(t, strings.HasPrefix(id, "ansible-worker-ggg"))
	m := validMQTT()
	m.ClientID = id
	require.Empty(t, validateMQTT(m))

	c.MQTT.ClientID = "gw-2"
	require.Equal(t, "gw-2", c.MQTTClientID())
}
