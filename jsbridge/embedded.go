package jsbridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/ansible-worker/ansible-worker/config"
)

// embeddedReadyTimeout bounds how long StartEmbedded waits for the server
// to accept connections.
const embeddedReadyTimeout = 10 * time.Second

// Embedded is a NATS server with JetStream (and optionally an MQTT
// listener) running inside this process. Create it with StartEmbedded and
// stop it with Shutdown.
type Embedded struct {
	srv       *server.Server
	clientURL string
	mqttAddr  string
	lock      *storeLock
	stopOnce  sync.Once
}

// StartEmbedded starts the server described by c.NATS.Embedded and waits
// until it accepts connections:
//   - server name "ansible-worker-<hostname>";
//   - clients on embedded.listen (port 0 or -1: a free port, see ClientURL);
//   - JetStream with its data in embedded.store_dir, which it locks for
//     its life: a second worker on the same store_dir is refused, with the
//     pid of the first, before it touches the store;
//   - an MQTT 3.1.1 listener on embedded.mqtt_listen when it is set (port 0
//     or -1: a free port, see MQTTAddr). nats-server does not speak MQTT 5;
//   - when nats.token or nats.username/password is configured, clients (NATS
//     and MQTT) must present the same credentials; an MQTT client gives the
//     token as its password. nkeys and creds are not enforced here.
//
// The server installs no signal handlers; its warnings and errors go to
// log (nil: discarded) and notices to log at debug level.
func StartEmbedded(c *config.Config, log *slog.Logger) (*Embedded, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts, err := embeddedOptions(c)
	if err != nil {
		return nil, err
	}
	lock, err := lockStore(opts.StoreDir)
	if err != nil {
		return nil, err
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		lock.release()
		return nil, fmt.Errorf("embedded NATS server: %w", err)
	}
	logger := &serverLog{log: log.With("component", "nats-server"), fatal: make(chan string, 1)}
	srv.SetLoggerV2(logger, false, false, false)
	if err := startServer(srv, logger); err != nil {
		lock.release()
		return nil, fmt.Errorf("embedded NATS server on %s (store %s): %w", net.JoinHostPort(opts.Host, strconv.Itoa(opts.Port)), opts.StoreDir, err)
	}
	emb := &Embedded{srv: srv, lock: lock, clientURL: "nats://" + config.ConnectAddr(hostPortOf(srv.ClientURL()))}
	if addr := srv.Addr(); addr != nil {
		if ta, ok := addr.(*net.TCPAddr); ok {
			emb.clientURL = "nats://" + config.ConnectAddr(net.JoinHostPort(opts.Host, strconv.Itoa(ta.Port)))
		}
	}
	if opts.MQTT.Port != 0 {
		// The server writes the port it bound back into the options it
		// was given; ReadyForConnections has waited for that.
		emb.mqttAddr = config.ConnectAddr(net.JoinHostPort(opts.MQTT.Host, strconv.Itoa(opts.MQTT.Port)))
	}
	log.Debug("embedded NATS server ready", "url", emb.clientURL, "mqtt", emb.mqttAddr, "store_dir", opts.StoreDir)
	return emb, nil
}

// embeddedOptions are the server options of nats.embedded.
func embeddedOptions(c *config.Config) (*server.Options, error) {
	e := c.NATS.Embedded
	host, port, err := listenAddr(e.Listen)
	if err != nil {
		return nil, fmt.Errorf("nats.embedded.listen: %w", err)
	}
	if e.StoreDir == "" {
		return nil, errors.New("nats.embedded.store_dir is empty")
	}
	opts := &server.Options{}
	if e.ConfigFile != "" {
		if opts, err = server.ProcessConfigFile(e.ConfigFile); err != nil {
			return nil, fmt.Errorf("%w: nats.embedded.config_file: %w", ErrSettings, err)
		}
	}
	// The file's settings win; ours fill what it leaves unset.
	if opts.ServerName == "" {
		opts.ServerName = "ansible-worker-" + serverNameSafe(hostnameOr("localhost"))
	}
	if opts.Host == "" && opts.Port == 0 {
		opts.Host, opts.Port = host, port
	}
	if opts.StoreDir == "" {
		opts.StoreDir = e.StoreDir
	}
	opts.JetStream, opts.NoSigs, opts.NoLog = true, true, true
	if e.MQTTListen != "" && opts.MQTT.Port == 0 {
		mh, mp, err := listenAddr(e.MQTTListen)
		if err != nil {
			return nil, fmt.Errorf("nats.embedded.mqtt_listen: %w", err)
		}
		opts.MQTT.Host, opts.MQTT.Port = mh, mp
	}
	if opts.Authorization == "" && opts.Username == "" && len(opts.Users) == 0 && len(opts.Nkeys) == 0 && len(opts.Accounts) == 0 {
		switch {
		case c.NATS.Token != "":
			opts.Authorization = c.NATS.Token
		case c.NATS.Username != "":
			opts.Username, opts.Password = c.NATS.Username, c.NATS.Password
		}
	}
	return opts, nil
}

// CheckEmbedded reads the embedded server's settings as StartEmbedded
// would, nats.embedded.config_file included, without starting it.
func CheckEmbedded(c *config.Config) error {
	_, err := embeddedOptions(c)
	return err
}

func startServer(srv *server.Server, logger *serverLog) error {
	started := make(chan struct{})
	go func() {
		defer close(started)
		srv.Start()
	}()
	ready := make(chan bool, 1)
	go func() { ready <- srv.ReadyForConnections(embeddedReadyTimeout) }()
	fail := func(why string) error {
		// Start goes on after a fatal error (our logger does not exit the
		// process): let it finish before shutting down.
		select {
		case <-started:
		case <-time.After(embeddedReadyTimeout):
		}
		srv.Shutdown()
		srv.WaitForShutdown()
		return errors.New(why)
	}
	select {
	case ok := <-ready:
		if ok {
			return nil
		}
		select {
		case msg := <-logger.fatal:
			return fail(msg)
		default:
			return fail(fmt.Sprintf("not ready for connections after %s", embeddedReadyTimeout))
		}
	case msg := <-logger.fatal:
		return fail(msg)
	}
}

// How long a node of a cluster goes without a JetStream meta leader before
// WaitJetStream says so, and how often it says it again.
const (
	clusterWaitFirst = 3 * time.Second
	clusterWaitEvery = 30 * time.Second
)

// WaitJetStream returns nil once the server's JetStream serves requests: at
// once for a standalone server; for a node of a cluster (a config_file with
// a cluster block), once the cluster has a JetStream meta leader. A new
// cluster elects one only when every node its routes name is up, an
// existing one when a majority is, so the first host of a cluster to start
// may wait long. It waits as long as ctx lasts, warning on log now and then,
// and returns ctx's error when ctx ends first: giving up would take this
// node away from the peers that wait for it.
func (e *Embedded) WaitJetStream(ctx context.Context, log *slog.Logger) error {
	if !e.srv.JetStreamIsClustered() {
		return nil
	}
	start := time.Now()
	next := start.Add(clusterWaitFirst)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		h := e.srv.Healthz(&server.HealthzOptions{JSMetaOnly: true})
		if h.Status == "ok" {
			return nil
		}
		if now := time.Now(); now.After(next) {
			log.Warn("the embedded NATS server waits for the other nodes of its cluster (a new cluster needs all of them up, an existing one most of them)",
				"cluster", e.srv.ClusterName(), "waited", now.Sub(start).Round(time.Second), "status", h.Error)
			next = now.Add(clusterWaitEvery)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// ClientURL returns the URL NATS clients connect to (the resolved port
// when a free one was picked; 127.0.0.1 for an unspecified host).
func (e *Embedded) ClientURL() string { return e.clientURL }

// MQTTAddr returns host:port of the MQTT listener, "" when there is none.
func (e *Embedded) MQTTAddr() string { return e.mqttAddr }

// Server returns the nats-server instance.
func (e *Embedded) Server() *server.Server { return e.srv }

// InProcessOption returns a nats.go option that connects to this server
// in-process, without TCP.
func (e *Embedded) InProcessOption() nats.Option { return nats.InProcessServer(e.srv) }

// Shutdown stops the server, waits until it has stopped and unlocks the
// store. It may be called more than once.
func (e *Embedded) Shutdown() {
	e.stopOnce.Do(func() {
		e.srv.Shutdown()
		e.srv.WaitForShutdown()
		e.lock.release()
	})
}

// listenAddr splits host:port for nats-server, where port 0 or -1 means a
// free port (nats-server's RANDOM_PORT is -1; its 0 would mean the default
// port).
func listenAddr(s string) (string, int, error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not host:port", s)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < -1 || port > 65535 {
		return "", 0, fmt.Errorf("%q: bad port", s)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

func hostPortOf(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		return u[i+3:]
	}
	return u
}

func hostnameOr(def string) string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return def
	}
	return h
}

// serverNameSafe keeps a server name free of spaces and odd characters.
func serverNameSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '-'
	}, s)
}

// serverLog routes nats-server's log to slog: notices at debug, warnings
// at warn, errors and fatal errors at error. The first fatal error is
// also sent on fatal, so StartEmbedded can fail at once instead of
// waiting out the ready timeout (nats-server would otherwise exit the
// process on it).
type serverLog struct {
	log   *slog.Logger
	fatal chan string
}

func (l *serverLog) logf(level slog.Level, format string, v []any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, v...))
	}
}

// Noticef implements server.Logger.
func (l *serverLog) Noticef(format string, v ...any) { l.logf(slog.LevelDebug, format, v) }

// Warnf implements server.Logger.
func (l *serverLog) Warnf(format string, v ...any) { l.logf(slog.LevelWarn, format, v) }

// Errorf implements server.Logger.
func (l *serverLog) Errorf(format string, v ...any) { l.logf(slog.LevelError, format, v) }

// Fatalf implements server.Logger; it does not exit.
func (l *serverLog) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error(msg, "fatal", true)
	select {
	case l.fatal <- msg:
	default:
	}
}

// Debugf implements server.Logger.
func (l *serverLog) Debugf(format string, v ...any) {}

// Tracef implements server.Logger.
func (l *serverLog) Tracef(format string, v ...any) {}
