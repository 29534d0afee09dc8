package jsbridge

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/config"
)

func newTestLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// syncBuffer is a log sink that goroutines may write while a test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// applied applies opts to nats.go's default options.
func applied(t *testing.T, opts []nats.Option) nats.Options {
	t.Helper()
	o := nats.GetDefaultOptions()
	for _, opt := range opts {
		require.NoError(t, opt(&o))
	}
	return o
}

func TestClientOptionsDefaults(t *testing.T) {
	c := config.DefaultConfig()
	opts, err := ClientOptions(c, "ansible-worker run")
	require.NoError(t, err)
	o := applied(t, opts)
	def := nats.GetDefaultOptions()
	require.Equal(t, "ansible-worker run", o.Name)
	require.False(t, o.Verbose)
	require.True(t, o.AllowReconnect)
	require.Equal(t, -1, o.MaxReconnect) // forever
	require.Equal(t, def.Timeout, o.Timeout)
	require.Equal(t, def.ReconnectWait, o.ReconnectWait)
	require.Equal(t, def.PingInterval, o.PingInterval)
	require.Equal(t, def.MaxPingsOut, o.MaxPingsOut)
	require.Equal(t, def.ReconnectBufSize, o.ReconnectBufSize)
	require.Equal(t, def.FlusherTimeout, o.FlusherTimeout)
	require.False(t, o.Secure)
	require.Empty(t, o.User)
	require.Empty(t, o.Token)

	// A bare Config (no defaults filled in) also gets the nats.go defaults.
	opts, err = ClientOptions(&config.Config{}, "")
	require.NoError(t, err)
	o = applied(t, opts)
	require.Equal(t, def.Timeout, o.Timeout)
	require.Equal(t, def.PingInterval, o.PingInterval)
	require.Equal(t, -1, o.MaxReconnect)
	require.True(t, o.AllowReconnect)
}

func TestClientOptionsMapping(t *testing.T) {
	c := config.DefaultConfig()
	no := false
	five := 5
	c.NATS.Options = config.NATSClientOptions{
		Name:                 "from-config",
		Verbose:              true,
		AllowReconnect:       &no,
		ConnectTimeout:       1.5,
		ReconnectTimeWait:    0.25,
		PingInterval:         30,
		FlushTimeout:         3,
		MaxReconnectAttempts: &five,
		MaxOutstandingPings:  4,
		FlusherQueueSize:     10,
		PendingSize:          4096,
	}
	c.NATS.Username, c.NATS.Password = "u", "p"
	opts, err := ClientOptions(c, "argument")
	require.NoError(t, err)
	o := applied(t, opts)
	require.Equal(t, "from-config", o.Name) // options.name wins
	require.True(t, o.Verbose)
	require.False(t, o.AllowReconnect)
	require.Equal(t, 1500*time.Millisecond, o.Timeout)
	require.Equal(t, 250*time.Millisecond, o.ReconnectWait)
	require.Equal(t, 30*time.Second, o.PingInterval)
	require.Equal(t, 3*time.Second, o.FlusherTimeout)
	require.Equal(t, 5, o.MaxReconnect)
	require.Equal(t, 4, o.MaxPingsOut)
	require.Equal(t, 4096, o.ReconnectBufSize)
	require.Equal(t, "u", o.User)
	require.Equal(t, "p", o.Password)

	c.NATS.Username, c.NATS.Password = "", ""
	c.NATS.Token = "tok"
	c.NATS.Options.PingInterval = -1
	c.NATS.Options.PendingSize = -1
	o = applied(t, must(ClientOptions(c, "")))
	require.Equal(t, "tok", o.Token)
	require.LessOrEqual(t, o.PingInterval, time.Duration(0))
	require.Equal(t, -1, o.ReconnectBufSize)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestClientOptionsErrorsHideSecrets(t *testing.T) {
	c := config.DefaultConfig()
	c.NATS.NkeysSeed = "SUmistyped-seed-secret"
	_, err := ClientOptions(c, "")
	require.ErrorContains(t, err, "nats.nkeys_seed")
	require.NotContains(t, err.Error(), "mistyped-seed-secret")

	// An account seed is a seed, but not a user's.
	akp, err := nkeys.CreateAccount()
	require.NoError(t, err)
	aseed, err := akp.Seed()
	require.NoError(t, err)
	c.NATS.NkeysSeed = string(aseed)
	_, err = ClientOptions(c, "")
	require.ErrorContains(t, err, "not a user seed")
	require.NotContains(t, err.Error(), string(aseed))

	c = config.DefaultConfig()
	c.NATS.TLS.CAFile = filepath.Join(t.TempDir(), "missing.pem")
	_, err = ClientOptions(c, "")
	require.ErrorContains(t, err, "nats.tls.ca_file")
}

// runServer starts a nats-server configured directly (not through
// StartEmbedded).
func runServer(t *testing.T, o *server.Options) *server.Server {
	t.Helper()
	o.Host, o.Port, o.NoLog, o.NoSigs = "127.0.0.1", -1, true, true
	s, err := server.NewServer(o)
	require.NoError(t, err)
	go s.Start()
	require.True(t, s.ReadyForConnections(10*time.Second), "server not ready")
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

func serverConfig(url string) *config.Config {
	c := config.DefaultConfig()
	c.NATS.Servers = config.StringList{url}
	c.NATS.Options.ConnectTimeout = 2
	return c
}

func TestNkeys(t *testing.T) {
	kp, err := nkeys.CreateUser()
	require.NoError(t, err)
	pub, err := kp.PublicKey()
	require.NoError(t, err)
	seed, err := kp.Seed()
	require.NoError(t, err)
	s := runServer(t, &server.Options{Nkeys: []*server.NkeyUser{{Nkey: pub}}})

	// A seed file.
	seedFile := filepath.Join(t.TempDir(), "user.nk")
	require.NoError(t, os.WriteFile(seedFile, seed, 0o600))
	c := serverConfig(s.ClientURL())
	c.NATS.NkeysSeed = seedFile
	require.NoError(t, c.Validate())
	nc := connect(t, c)
	require.True(t, nc.IsConnected())

	// The seed itself.
	c.NATS.NkeysSeed = string(seed)
	require.NoError(t, c.Validate())
	nc = connect(t, c)
	require.True(t, nc.IsConnected())

	// Another user's seed is refused, and never shown.
	other, err := nkeys.CreateUser()
	require.NoError(t, err)
	otherSeed, err := other.Seed()
	require.NoError(t, err)
	c.NATS.NkeysSeed = string(otherSeed)
	_, err = Connect(context.Background(), c, "test", nil)
	requireSettingsError(t, err)
	require.ErrorIs(t, err, nats.ErrAuthorization)
	require.NotContains(t, err.Error(), string(otherSeed))
}

func TestCreds(t *testing.T) {
	// Operator mode: operator -> account (with JetStream) -> user.
	okp, err := nkeys.CreateOperator()
	require.NoError(t, err)
	opub, err := okp.PublicKey()
	require.NoError(t, err)
	oc := jwt.NewOperatorClaims(opub)
	oc.Name = "test-operator"
	ojwt, err := oc.Encode(okp)
	require.NoError(t, err)
	oc, err = jwt.DecodeOperatorClaims(ojwt)
	require.NoError(t, err)

	newAccount := func(name string, js bool) (nkeys.KeyPair, string, string) {
		kp, err := nkeys.CreateAccount()
		require.NoError(t, err)
		pub, err := kp.PublicKey()
		require.NoError(t, err)
		ac := jwt.NewAccountClaims(pub)
		ac.Name = name
		if js {
			ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
		}
		tok, err := ac.Encode(okp)
		require.NoError(t, err)
		return kp, pub, tok
	}
	_, sysPub, sysJWT := newAccount("SYS", false)
	akp, apub, ajwt := newAccount("APP", true)
	res := &server.MemAccResolver{}
	require.NoError(t, res.Store(sysPub, sysJWT))
	require.NoError(t, res.Store(apub, ajwt))

	ukp, err := nkeys.CreateUser()
	require.NoError(t, err)
	upub, err := ukp.PublicKey()
	require.NoError(t, err)
	useed, err := ukp.Seed()
	require.NoError(t, err)
	uc := jwt.NewUserClaims(upub)
	uc.Name = "worker"
	ujwt, err := uc.Encode(akp)
	require.NoError(t, err)
	creds, err := jwt.FormatUserConfig(ujwt, useed)
	require.NoError(t, err)
	credsFile := filepath.Join(t.TempDir(), "worker.creds")
	require.NoError(t, os.WriteFile(credsFile, creds, 0o600))

	s := runServer(t, &server.Options{
		TrustedOperators: []*jwt.OperatorClaims{oc},
		AccountResolver:  res,
		SystemAccount:    sysPub,
		JetStream:        true,
		StoreDir:         t.TempDir(),
	})

	c := serverConfig(s.ClientURL())
	c.NATS.UserCredentials = credsFile
	require.NoError(t, c.Validate())
	nc := connect(t, c)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "CREDS", Subjects: []string{"creds.>"}})
	require.NoError(t, err, "JetStream works for the account")

	// Without credentials the server refuses.
	_, err = Connect(context.Background(), serverConfig(s.ClientURL()), "test", nil)
	requireSettingsError(t, err)
}

// testPKI is a CA with a server and a client certificate, written as PEM
// files.
type testPKI struct {
	caFile, clientCert, clientKey string
	serverCert                    tls.Certificate
	pool                          *x509.CertPool
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	writePEM := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		return p
	}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		return k
	}
	now := time.Now()
	caKey := newKey()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "ansible-worker test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)

	issue := func(serial int64, cn string, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
		k := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			DNSNames:     []string{"localhost"},
			IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		require.NoError(t, err)
		return der, k
	}
	srvDER, srvKey := issue(2, "localhost", x509.ExtKeyUsageServerAuth)
	cliDER, cliKey := issue(3, "worker", x509.ExtKeyUsageClientAuth)
	cliKeyDER, err := x509.MarshalECPrivateKey(cliKey)
	require.NoError(t, err)

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return testPKI{
		caFile:     writePEM("ca.pem", "CERTIFICATE", caDER),
		clientCert: writePEM("client.pem", "CERTIFICATE", cliDER),
		clientKey:  writePEM("client-key.pem", "EC PRIVATE KEY", cliKeyDER),
		serverCert: tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey},
		pool:       pool,
	}
}

func TestTLS(t *testing.T) {
	pki := newTestPKI(t)
	s := runServer(t, &server.Options{
		TLS:        true,
		TLSTimeout: 2,
		TLSConfig:  &tls.Config{Certificates: []tls.Certificate{pki.serverCert}, MinVersion: tls.VersionTLS12},
	})
	url := s.ClientURL()
	require.True(t, strings.HasPrefix(url, "tls://"), url)

	c := serverConfig(url)
	c.NATS.TLS.CAFile = pki.caFile
	require.NoError(t, c.Validate())
	nc := connect(t, c)
	require.True(t, nc.IsConnected())
	require.NoError(t, nc.Flush())

	// server_name is checked against the certificate.
	c.NATS.TLS.ServerName = "not-the-server"
	_, err := Connect(context.Background(), c, "test", nil)
	requireSettingsError(t, err)
	require.ErrorContains(t, err, "certificate")

	// Without the CA the certificate is not trusted.
	_, err = Connect(context.Background(), serverConfig(url), "test", nil)
	requireSettingsError(t, err)
	require.ErrorContains(t, err, "certificate")
	require.ErrorContains(t, err, url)
}

func TestMutualTLSAndHandshakeFirst(t *testing.T) {
	pki := newTestPKI(t)
	s := runServer(t, &server.Options{
		TLS:               true,
		TLSVerify:         true,
		TLSTimeout:        2,
		TLSHandshakeFirst: true,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{pki.serverCert},
			ClientCAs:    pki.pool,
			ClientAuth:   tls.RequireAndVerifyClientCert,
			MinVersion:   tls.VersionTLS12,
		},
	})
	c := serverConfig(s.ClientURL())
	c.NATS.TLS = config.NATSTLSConfig{CAFile: pki.caFile, CertFile: pki.clientCert, KeyFile: pki.clientKey, HandshakeFirst: true}
	require.NoError(t, c.Validate())
	nc := connect(t, c)
	require.True(t, nc.IsConnected())

	// No client certificate: refused.
	c.NATS.TLS.CertFile, c.NATS.TLS.KeyFile = "", ""
	_, err := Connect(context.Background(), c, "test", nil)
	requireSettingsError(t, err)
}

func TestHandlersLogWithoutSecrets(t *testing.T) {
	var buf syncBuffer
	log := newTestLogger(&buf)
	c := embeddedConfig(t, false)
	c.NATS.Username, c.NATS.Password = "u", "log-secret-pw"
	// Fixed port so the restarted server is found again.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c.NATS.Embedded.Listen = l.Addr().String()
	require.NoError(t, l.Close())
	e, err := StartEmbedded(c, nil)
	require.NoError(t, err)

	cc := clientConfig(c, e)
	cc.NATS.Options.ReconnectTimeWait = 0.05
	reconnected := make(chan struct{}, 1)
	nc, err := Connect(context.Background(), cc, "test", log, nats.ReconnectHandler(func(*nats.Conn) {
		reconnected <- struct{}{}
	}))
	require.NoError(t, err)
	defer nc.Close()

	e.Shutdown()
	e2, err := StartEmbedded(c, nil)
	require.NoError(t, err)
	defer e2.Shutdown()
	select {
	case <-reconnected:
	case <-time.After(10 * time.Second):
		t.Fatal("no reconnect")
	}
	require.Eventually(t, func() bool { return strings.Contains(buf.String(), "NATS connection lost") },
		5*time.Second, 10*time.Millisecond)
	nc.Close()
	require.NotContains(t, buf.String(), "log-secret-pw")
}
