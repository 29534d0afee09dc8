package test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// mosqOpts configures startMosquitto.
type mosqOpts struct {
	Users       map[string]string // non-empty: password_file with these users, allow_anonymous false
	TLS         bool              // listener speaks TLS with a server cert for 127.0.0.1/localhost signed by a test CA
	RequireCert bool              // with TLS: clients must present a cert signed by the test CA (require_certificate true)
}

// mosquitto is a real mosquitto broker on a loopback port, run by the test.
type mosquitto struct {
	Port int
	Dir  string // config, persistence, certs

	// With TLS: PEM files of the test CA and of a client cert+key it signed.
	CAFile, ClientCert, ClientKey string
	// With TLS: a CA that did NOT sign the server cert (for a "bad TLS" test).
	OtherCAFile string

	bin  string
	conf string
	log  *syncBuffer // every run's stderr, restarts appended
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// errAddrInUse is a broker that could not bind its port.
var errAddrInUse = errors.New("mosquitto: address already in use")

// startMosquitto writes the config (and certs, password file) into a fresh
// directory and runs the broker on a free port until the test ends.
func startMosquitto(t testing.TB, o mosqOpts) *mosquitto {
	t.Helper()
	m := &mosquitto{Dir: t.TempDir(), bin: mosquittoBinary(t), log: &syncBuffer{}}
	m.conf = filepath.Join(m.Dir, "mosquitto.conf")
	if o.TLS {
		m.writeCerts(t)
	}
	pwfile := m.writePasswords(t, o.Users)
	t.Cleanup(func() {
		m.stop(t)
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", m.logs())
		}
	})
	// A free port can be taken between closing it and mosquitto binding it:
	// try a few.
	var err error
	for range 5 {
		m.Port = freePort(t)
		require.NoError(t, os.WriteFile(m.conf, []byte(m.config(o, pwfile)), 0o600))
		if err = m.launch(10 * time.Second); !errors.Is(err, errAddrInUse) {
			break
		}
	}
	if err != nil {
		t.Fatalf("mosquitto did not start: %v\n%s", err, m.logs())
	}
	return m
}

// mosquittoBinary finds the broker, which Debian installs in /usr/sbin (often
// not on a normal user's PATH).
func mosquittoBinary(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	_, err := os.Stat("/usr/sbin/mosquitto")
	require.NoError(t, err, "mosquitto broker not found")
	return "/usr/sbin/mosquitto"
}

// config is the broker's mosquitto.conf.
func (m *mosquitto) config(o mosqOpts, pwfile string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "per_listener_settings false\nlistener %d 127.0.0.1\n", m.Port)
	// Started as root, mosquitto 2.0 drops to user "mosquitto" BEFORE it
	// reads the password file, certs and persistence, and cannot enter the
	// 0700 t.TempDir(). "user root" keeps root; as a non-root user it is
	// ignored.
	b.WriteString("user root\n")
	fmt.Fprintf(&b, "persistence true\npersistence_location %s/\nautosave_interval 1\n", m.Dir)
	b.WriteString("log_dest stderr\nlog_type all\nmax_queued_messages 10000\n")
	if pwfile != "" {
		fmt.Fprintf(&b, "allow_anonymous false\npassword_file %s\n", pwfile)
	} else {
		b.WriteString("allow_anonymous true\n")
	}
	if o.TLS {
		fmt.Fprintf(&b, "cafile %s\ncertfile %s\nkeyfile %s\n", m.CAFile,
			filepath.Join(m.Dir, "server.pem"), filepath.Join(m.Dir, "server-key.pem"))
		if o.RequireCert {
			b.WriteString("require_certificate true\n")
		}
	}
	return b.String()
}

// writePasswords creates the password file with mosquitto_passwd, so the
// hashes are the broker's own format; "" without users.
func (m *mosquitto) writePasswords(t testing.TB, users map[string]string) string {
	t.Helper()
	if len(users) == 0 {
		return ""
	}
	file := filepath.Join(m.Dir, "passwd")
	for i, u := range slices.Sorted(maps.Keys(users)) {
		args := []string{"-b", file, u, users[u]}
		if i == 0 {
			args = []string{"-b", "-c", file, u, users[u]}
		}
		out, err := exec.Command("mosquitto_passwd", args...).CombinedOutput()
		require.NoError(t, err, "mosquitto_passwd: %s", out)
	}
	return file
}

// launch runs the broker and waits until it accepts connections, exits or
// total passes. errAddrInUse: the port was taken.
func (m *mosquitto) launch(total time.Duration) error {
	from := len(m.log.String())
	cmd := exec.Command(m.bin, "-c", m.conf)
	cmd.Stdout, cmd.Stderr = m.log, m.log
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	m.cmd, m.done = cmd, done
	for deadline := time.Now().Add(total); time.Now().Before(deadline); {
		select {
		case <-done:
			if strings.Contains(m.log.String()[from:], "Address already in use") {
				return errAddrInUse
			}
			return fmt.Errorf("mosquitto exited: %v", cmd.ProcessState)
		case <-time.After(50 * time.Millisecond):
		}
		// "running" is logged once every listener is bound, so the dial
		// reaches this broker, not whoever else may hold the port.
		if strings.Contains(m.log.String()[from:], " running") && m.dial() == nil {
			return nil
		}
	}
	_ = cmd.Process.Kill()
	<-done
	return fmt.Errorf("mosquitto not ready after %s", total)
}

func (m *mosquitto) dial() error {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(m.Port)), time.Second)
	if err == nil {
		c.Close()
	}
	return err
}

// running reports whether the current broker process has not exited.
func (m *mosquitto) running() bool {
	if m.done == nil {
		return false
	}
	select {
	case <-m.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and waits, so mosquitto writes its persistence file;
// after 5 s it kills the broker and fails the test.
func (m *mosquitto) stop(t testing.TB) {
	t.Helper()
	if !m.running() {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(5 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
		t.Errorf("mosquitto did not exit on SIGTERM within 5s")
	}
}

// kill ends the broker with SIGKILL: nothing is saved beyond the last
// autosave.
func (m *mosquitto) kill(t testing.TB) {
	t.Helper()
	if !m.running() {
		return
	}
	_ = m.cmd.Process.Kill()
	<-m.done
}

// restart runs the broker again on the same port, config and persistence
// directory (stopping it first if it still runs). The old socket may linger
// briefly, so binding is retried until a deadline.
func (m *mosquitto) restart(t testing.TB) {
	t.Helper()
	m.stop(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := m.launch(time.Until(deadline))
		if err == nil {
			return
		}
		if !errors.Is(err, errAddrInUse) || time.Now().After(deadline) {
			t.Fatalf("mosquitto did not restart on port %d: %v\n%s", m.Port, err, m.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logs is the broker's log of every run so far.
func (m *mosquitto) logs() string { return m.log.String() }

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// newTestCA makes a self-signed CA and writes its certificate to certFile.
func newTestCA(t testing.TB, name, certFile string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := certTemplate(t, name)
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	writePEM(t, certFile, "CERTIFICATE", der, 0o644)
	return &testCA{cert: cert, key: key}
}

// issue signs a new key's certificate from tmpl and writes both PEM files.
func (ca *testCA) issue(t testing.TB, tmpl *x509.Certificate, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	writePEM(t, certFile, "CERTIFICATE", der, 0o644)
	writePEM(t, keyFile, "PRIVATE KEY", pkcs8, 0o600)
}

// certTemplate is a day-long certificate with a random serial; distinct
// names keep OpenSSL from taking a leaf for self-signed.
func certTemplate(t testing.TB, name string) *x509.Certificate {
	t.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	require.NoError(t, err)
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name, Organization: []string{"ansible-worker tests"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
}

func writePEM(t testing.TB, file, typ string, der []byte, mode os.FileMode) {
	t.Helper()
	b := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	require.NoError(t, os.WriteFile(file, b, mode))
}

// writeCerts makes the test CA, the server and client certs it signs, and a
// second, unrelated CA.
func (m *mosquitto) writeCerts(t testing.TB) {
	t.Helper()
	m.CAFile = filepath.Join(m.Dir, "ca.pem")
	m.OtherCAFile = filepath.Join(m.Dir, "other-ca.pem")
	m.ClientCert = filepath.Join(m.Dir, "client.pem")
	m.ClientKey = filepath.Join(m.Dir, "client-key.pem")
	ca := newTestCA(t, "test CA", m.CAFile)
	newTestCA(t, "other CA", m.OtherCAFile)

	srv := certTemplate(t, "localhost")
	srv.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	srv.DNSNames = []string{"localhost"}
	srv.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	ca.issue(t, srv, filepath.Join(m.Dir, "server.pem"), filepath.Join(m.Dir, "server-key.pem"))

	cli := certTemplate(t, "test client")
	cli.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	ca.issue(t, cli, m.ClientCert, m.ClientKey)
}

// mqttPub publishes one message with mosquitto_pub; version is "mqttv5" or
// "mqttv311". extra args are appended (e.g. "--cafile", f). Fails the test on
// a non-zero exit.
func mqttPub(t testing.TB, port int, version string, qos int, topic, payload string, extra ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	args := append([]string{"-V", version, "-h", "127.0.0.1", "-p", strconv.Itoa(port),
		"-q", strconv.Itoa(qos), "-t", topic, "-m", payload}, extra...)
	out, err := exec.CommandContext(ctx, "mosquitto_pub", args...).CombinedOutput()
	require.NoError(t, err, "mosquitto_pub %v: %s", args, out)
}

// mqttRetained returns the retained message of topic on the broker: its
// payload, qos (as stored: the subscription asks for qos 2) and retain flag.
// It fails the test when none arrives within 10 s.
func mqttRetained(t testing.TB, port int, version, topic string, extra ...string) (payload string, qos int, retained bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	// -N: no newline after the payload, so it comes back byte for byte.
	args := append([]string{"-V", version, "-h", "127.0.0.1", "-p", strconv.Itoa(port),
		"-q", "2", "-t", topic, "-C", "1", "-W", "10", "--retained-only", "-N", "-F", "%r %q %p"}, extra...)
	out, err := exec.CommandContext(ctx, "mosquitto_sub", args...).CombinedOutput()
	require.NoError(t, err, "mosquitto_sub %v (exit 27: no retained message in 10s): %s", args, out)
	f := strings.SplitN(string(out), " ", 3)
	require.Len(t, f, 3, "mosquitto_sub output: %q", out)
	qos, err = strconv.Atoi(f[1])
	require.NoError(t, err, "mosquitto_sub output: %q", out)
	return f[2], qos, f[0] == "1"
}

// The harness runs a real mosquitto with users and TLS, keeps retained
// messages across a restart, and runs a plain broker too.
func TestMosquittoHarness(t *testing.T) {
	t.Parallel()
	t.Run("tls-users", func(t *testing.T) {
		t.Parallel()
		m := startMosquitto(t, mosqOpts{Users: map[string]string{"alice": "a-secret", "bob": "b-secret"},
			TLS: true, RequireCert: true})
		tls := []string{"--cafile", m.CAFile, "--cert", m.ClientCert, "--key", m.ClientKey}
		alice := append([]string{"-u", "alice", "-P", "a-secret"}, tls...)
		mqttPub(t, m.Port, "mqttv5", 1, "aw/harness", "hello broker", append(alice, "-r")...)
		p, q, r := mqttRetained(t, m.Port, "mqttv311", "aw/harness", append([]string{"-u", "bob", "-P", "b-secret"}, tls...)...)
		require.Equal(t, "hello broker", p)
		require.Equal(t, 1, q)
		require.True(t, r)

		port := m.Port
		m.restart(t)
		require.Equal(t, port, m.Port)
		p, q, r = mqttRetained(t, m.Port, "mqttv5", "aw/harness", alice...)
		require.Equal(t, "hello broker", p, "retained message lost in the restart")
		require.Equal(t, 1, q)
		require.True(t, r)
		require.Contains(t, m.logs(), "Saving in-memory database")

		// require_certificate: the right password without a client cert fails.
		out, err := exec.Command("mosquitto_pub", "-h", "127.0.0.1", "-p", strconv.Itoa(m.Port), "-t", "x", "-m", "y",
			"--cafile", m.CAFile, "-u", "alice", "-P", "a-secret").CombinedOutput()
		require.Error(t, err, "published without a client cert: %s", out)
	})
	t.Run("rejects", func(t *testing.T) {
		t.Parallel()
		m := startMosquitto(t, mosqOpts{Users: map[string]string{"alice": "a-secret"}, TLS: true})
		mqttPub(t, m.Port, "mqttv311", 0, "x", "y", "--cafile", m.CAFile, "-u", "alice", "-P", "a-secret")
		base := []string{"-V", "mqttv311", "-h", "127.0.0.1", "-p", strconv.Itoa(m.Port), "-t", "x", "-m", "y"}
		for name, c := range map[string]struct {
			extra []string
			want  string
		}{
			"wrong CA":       {[]string{"--cafile", m.OtherCAFile, "-u", "alice", "-P", "a-secret"}, "TLS error"},
			"wrong password": {[]string{"--cafile", m.CAFile, "-u", "alice", "-P", "nope"}, "not authorised"},
			"anonymous":      {[]string{"--cafile", m.CAFile}, "not authorised"},
		} {
			out, err := exec.Command("mosquitto_pub", append(base, c.extra...)...).CombinedOutput()
			require.Error(t, err, "%s accepted: %s", name, out)
			require.Contains(t, string(out), c.want, name)
		}
	})
	t.Run("plain", func(t *testing.T) {
		t.Parallel()
		m := startMosquitto(t, mosqOpts{})
		mqttPub(t, m.Port, "mqttv311", 0, "aw/plain", "multi\nline payload", "-r")
		p, q, r := mqttRetained(t, m.Port, "mqttv5", "aw/plain")
		require.Equal(t, "multi\nline payload", p)
		require.Equal(t, 0, q)
		require.True(t, r)
		m.kill(t)
		m.restart(t)
		require.NoError(t, m.dial())
	})
}
