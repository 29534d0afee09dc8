package jsbridge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/ansible-worker/ansible-worker/config"
)

// ErrUnreachable is wrapped by Connect's error when no NATS server could be
// reached: refused, timed out, or the connection lost before the server
// answered. The CLI exits with code 5 on it, and only on it.
var ErrUnreachable = errors.New("NATS unreachable")

// ErrSettings is wrapped by Connect's error when the connection settings
// are at fault: a TLS, credentials or nkey file that cannot be read or
// parsed, or a server that was reached but refused our authentication or
// TLS (or whose certificate our TLS settings do not trust). Retrying does
// not help; the CLI exits with code 2 on it.
var ErrSettings = errors.New("bad NATS connection settings")

// ClientOptions maps the nats section of c to nats.go options. name is the
// connection name shown in the server's monitoring; nats.options.name
// (RUNNER_NATS_CLIENT_NAME) wins over it.
//
// A zero numeric option keeps the nats.go default. max_reconnect_attempts
// defaults to -1 (reconnect forever), since a worker must survive outages.
// flush_timeout sets nats.FlusherTimeout; flusher_queue_size has no
// nats.go counterpart and is ignored (see docs/configuration.md).
func ClientOptions(c *config.Config, name string) ([]nats.Option, error) {
	n := c.NATS
	o := n.Options
	var opts []nats.Option

	if o.Name != "" {
		name = o.Name
	}
	if name != "" {
		opts = append(opts, nats.Name(name))
	}
	if o.Verbose {
		opts = append(opts, func(no *nats.Options) error {
			no.Verbose = true
			return nil
		})
	}
	if o.AllowReconnect != nil && !*o.AllowReconnect {
		opts = append(opts, nats.NoReconnect())
	}
	if d := o.ConnectTimeoutDuration(); d > 0 {
		opts = append(opts, nats.Timeout(d))
	}
	if o.ReconnectTimeWait > 0 {
		opts = append(opts, nats.ReconnectWait(o.ReconnectTimeWaitDuration()))
	}
	maxReconnects := -1
	if o.MaxReconnectAttempts != nil {
		maxReconnects = *o.MaxReconnectAttempts
	}
	opts = append(opts, nats.MaxReconnects(maxReconnects))
	switch {
	case o.PingInterval > 0:
		opts = append(opts, nats.PingInterval(o.PingIntervalDuration()))
	case o.PingInterval < 0: // no pings
		opts = append(opts, nats.PingInterval(-1))
	}
	if o.MaxOutstandingPings > 0 {
		opts = append(opts, nats.MaxPingsOutstanding(o.MaxOutstandingPings))
	}
	if o.PendingSize != 0 {
		opts = append(opts, nats.ReconnectBufSize(o.PendingSize))
	}
	if d := o.FlushTimeoutDuration(); d > 0 {
		opts = append(opts, nats.FlusherTimeout(d))
	}
	// o.FlusherQueueSize: nats.go coalesces flush requests in a one-slot
	// channel; there is no queue to size.

	switch {
	case n.Token != "":
		opts = append(opts, nats.Token(n.Token))
	case n.Username != "" || n.Password != "":
		opts = append(opts, nats.UserInfo(n.Username, n.Password))
	case n.UserCredentials != "":
		if err := checkCreds(n.UserCredentials); err != nil {
			return nil, err
		}
		opts = append(opts, nats.UserCredentials(n.UserCredentials))
	case n.NkeysSeed != "":
		opt, err := nkeyOption(n.NkeysSeed)
		if err != nil {
			return nil, err
		}
		opts = append(opts, opt)
	}

	if n.TLS.Enabled() {
		tc, err := clientTLSConfig(n.TLS)
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.Secure(tc))
		if n.TLS.HandshakeFirst {
			opts = append(opts, nats.TLSHandshakeFirst())
		}
	}
	return opts, nil
}

// nkeyOption authenticates with an nkey: seed is a seed file's path or the
// seed itself. Errors never contain the seed.
func nkeyOption(seed string) (nats.Option, error) {
	if kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(seed))); err == nil {
		pub, err := kp.PublicKey()
		if err != nil {
			return nil, fmt.Errorf("nats.nkeys_seed: %w", err)
		}
		if !nkeys.IsValidPublicUserKey(pub) {
			return nil, errors.New("nats.nkeys_seed: not a user seed (it must start with SU)")
		}
		return nats.Nkey(pub, kp.Sign), nil
	}
	if st, err := os.Stat(seed); err != nil || st.IsDir() {
		// The value may be a mistyped seed: do not repeat it.
		return nil, errors.New("nats.nkeys_seed: is neither an nkey seed nor a readable file")
	}
	opt, err := nats.NkeyOptionFromSeed(seed)
	if err != nil {
		return nil, fmt.Errorf("nats.nkeys_seed: seed file %s: %w", seed, err)
	}
	return opt, nil
}

// checkCreds reads a credentials file the way nats.go will at every connect,
// so a bad file is reported as such rather than as a failed connection.
// Errors never contain the file's content.
func checkCreds(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("nats.user_credentials: %w", err)
	}
	tok, err := jwt.ParseDecoratedJWT(b)
	if err == nil {
		_, err = jwt.DecodeUserClaims(tok)
	}
	if err != nil {
		return fmt.Errorf("nats.user_credentials: %s holds no valid user JWT", path)
	}
	if _, err := jwt.ParseDecoratedNKey(b); err != nil {
		return fmt.Errorf("nats.user_credentials: %s holds no valid nkey seed", path)
	}
	return nil
}

// clientTLSConfig builds the client TLS configuration of nats.tls.
func clientTLSConfig(t config.NATSTLSConfig) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("nats.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("nats.tls.ca_file: no PEM certificate in %s", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("nats.tls.cert_file/key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// HandlerOptions returns nats.go options that log connection events to
// log: disconnects (warn), reconnects (info), failed reconnect attempts
// (debug), closing (info) and asynchronous errors (error). Server URLs are
// logged with their credentials redacted.
func HandlerOptions(log *slog.Logger) []nats.Option {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return []nats.Option{
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS connection lost", "error", err)
			} else {
				log.Debug("NATS connection closed")
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("NATS reconnected", "server", config.RedactURL(nc.ConnectedUrlRedacted()))
		}),
		nats.ReconnectErrHandler(func(nc *nats.Conn, err error) {
			log.Debug("NATS reconnect attempt failed", "error", err)
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			if err := nc.LastError(); err != nil {
				log.Info("NATS connection closed", "error", err)
			}
		}),
		nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				log.Error("NATS error", "subject", sub.Subject, "error", err)
				return
			}
			log.Error("NATS error", "error", err)
		}),
	}
}

// Connect connects to c.ClientServers() with ClientOptions, HandlerOptions
// and extra (applied last, so they win). With an in-process option (see
// Embedded.InProcessOption) and no nats.servers, the embedded server's
// real URL is used, so a random listen port works. When no server can be connected
// to, the error names the servers tried (credentials redacted) and wraps
// the cause and either ErrUnreachable (no server answered, or none before
// ctx's deadline) or ErrSettings (our TLS or authentication settings are
// bad or were refused). Cancelling ctx abandons the attempt.
func Connect(ctx context.Context, c *config.Config, name string, log *slog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	opts, err := ClientOptions(c, name)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSettings, err)
	}
	opts = append(opts, HandlerOptions(log)...)
	opts = append(opts, extra...)
	servers := c.ClientServers()
	if len(c.NATS.Servers) == 0 {
		// In-process to the embedded server: its listen address may name
		// a random port (0 or -1), so use the one it really has.
		scratch := nats.GetDefaultOptions()
		for _, opt := range extra {
			_ = opt(&scratch)
		}
		if s, ok := scratch.InProcessServer.(*server.Server); ok && s != nil {
			servers = []string{s.ClientURL()}
		}
	}

	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(strings.Join(servers, ","), opts...)
		done <- result{nc, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			kind := ErrUnreachable
			if refusedSettings(r.err) {
				kind = ErrSettings
			}
			return nil, fmt.Errorf("%w: cannot connect to %s: %w", kind, redactServers(servers), redactError(r.err, servers))
		}
		if log != nil {
			log.Debug("connected to NATS", "server", config.RedactURL(r.nc.ConnectedUrlRedacted()))
		}
		return r.nc, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			// No server answered in time.
			return nil, fmt.Errorf("%w: connecting to %s: %w", ErrUnreachable, redactServers(servers), ctx.Err())
		}
		return nil, fmt.Errorf("connecting to %s: %w", redactServers(servers), ctx.Err())
	}
}

// settingsRefusals are nats.go's errors for a server that was reached and
// refused our authentication or TLS settings.
var settingsRefusals = []error{
	nats.ErrAuthorization, nats.ErrAuthExpired, nats.ErrAuthRevoked, nats.ErrAccountAuthExpired,
	nats.ErrNkeysNotSupported, nats.ErrSecureConnRequired, nats.ErrSecureConnWanted,
	nats.ErrClientCertOrRootCAsRequired, nats.ErrUserButNoSigCB, nats.ErrNkeyButNoSigCB, nats.ErrNoUserCB,
}

// refusedSettings reports whether a failed connect reached a server and
// failed on our TLS or authentication settings, rather than finding no
// server at all.
func refusedSettings(err error) bool {
	for _, r := range settingsRefusals {
		if errors.Is(err, r) {
			return true
		}
	}
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		record   tls.RecordHeaderError
		op       *net.OpError
	)
	// "remote error" is a TLS alert: the server refused our certificate or
	// our TLS parameters.
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.As(err, &record) || (errors.As(err, &op) && op.Op == "remote error")
}

// drainPoll is how often Drain looks whether the connection is closed.
const drainPoll = 5 * time.Millisecond

// Drain drains nc: its subscriptions take no new messages but handle those
// they have, what was published is flushed, then nc is closed. nats.go
// drains in the background, so Drain waits until nc is closed; closing it
// right after nc.Drain() would cut the drain short. When ctx ends first,
// Drain closes nc at once and returns ctx's error.
func Drain(ctx context.Context, nc *nats.Conn) error {
	if nc.IsClosed() {
		return nil
	}
	if err := nc.Drain(); err != nil {
		nc.Close()
		return fmt.Errorf("drain NATS connection: %w", err)
	}
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	for !nc.IsClosed() {
		select {
		case <-ctx.Done():
			nc.Close()
			return fmt.Errorf("drain NATS connection: %w", ctx.Err())
		case <-tick.C:
		}
	}
	if err := nc.LastError(); errors.Is(err, nats.ErrDrainTimeout) {
		return fmt.Errorf("drain NATS connection: %w", err)
	}
	return nil
}

// redactedError is err with the secrets of server URLs cut out of its
// message; errors.Is and errors.As still see err.
type redactedError struct {
	err error
	msg string
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactError hides the passwords and tokens of servers in err's message:
// nats.go quotes a URL it cannot parse whole.
func redactError(err error, servers []string) error {
	msg := err.Error()
	clean := msg
	for _, s := range servers {
		clean = strings.ReplaceAll(clean, s, config.RedactURL(s))
		if secret := config.URLSecret(s); len(secret) >= 3 {
			clean = strings.ReplaceAll(clean, secret, config.SecretMask)
		}
	}
	if clean == msg {
		return err
	}
	return &redactedError{err: err, msg: clean}
}

func redactServers(servers []string) string {
	out := make([]string, len(servers))
	for i, s := range servers {
		out[i] = config.RedactURL(s)
	}
	return strings.Join(out, ", ")
}
