package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ansible-worker/ansible-worker/config"
	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/schemas"
)

// DefaultName is the connection name Connect gives the server's
// monitoring when neither WithName nor nats.options.name sets one.
const DefaultName = "ansible-worker client"

// DefaultJobsMaxAge is how long a client made with New keeps the files of
// runner jobs in the bucket it has to create (config's nats.jobs_max_age
// default).
const DefaultJobsMaxAge = 24 * time.Hour

// closeTimeout bounds how long Close waits for the connection to drain.
const closeTimeout = 5 * time.Second

// Client submits and follows the tasks of one worker group. It is safe for
// concurrent use.
type Client struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	names jsbridge.Names
	log   *slog.Logger
	// prov is how the streams and buckets are created when missing.
	prov jsbridge.ProvisionConfig
	// owned: Close drains the connection (Connect made it).
	owned bool

	mu    sync.Mutex
	store *jsbridge.StatusStore // opened on first use: a worker may create it later
}

// Option configures Connect and New.
type Option func(*settings)

type settings struct {
	group    string
	name     string
	log      *slog.Logger
	natsOpts []nats.Option
}

// WithGroup selects the worker group. The default is worker.group_name of
// the configuration for Connect, and the group of the names for New.
func WithGroup(group string) Option { return func(s *settings) { s.group = group } }

// WithLogger sets the logger of the client and of its connection's events
// (default slog.Default()).
func WithLogger(log *slog.Logger) Option { return func(s *settings) { s.log = log } }

// WithName sets the connection name shown in the server's monitoring
// (default DefaultName); nats.options.name in the configuration wins.
// Connect only.
func WithName(name string) Option { return func(s *settings) { s.name = name } }

// WithNATSOptions adds nats.go options to the connection, applied after
// the configuration's, so they win. Connect only.
func WithNATSOptions(opts ...nats.Option) Option {
	return func(s *settings) { s.natsOpts = append(s.natsOpts, opts...) }
}

func apply(opts []Option) settings {
	s := settings{name: DefaultName, log: slog.Default()}
	for _, o := range opts {
		o(&s)
	}
	return s
}

// Connect connects to the NATS servers of cfg (nats.servers, or the
// embedded server's listen address), with its authentication and TLS
// settings, and binds the client to a group of cfg.Worker.TopicPrefix. A
// bad group name wraps ErrInvalid and nothing is connected; a failed
// connection wraps jsbridge.ErrUnreachable or jsbridge.ErrSettings (see
// jsbridge.Connect). Close closes the connection.
func Connect(ctx context.Context, cfg *config.Config, opts ...Option) (*Client, error) {
	s := apply(opts)
	if s.group == "" {
		s.group = cfg.Worker.GroupName
	}
	if err := schemas.CheckID("group", s.group); err != nil {
		return nil, withKind(ErrInvalid, err)
	}
	nc, err := jsbridge.Connect(ctx, cfg, s.name, s.log, s.natsOpts...)
	if err != nil {
		return nil, err // it names the servers and wraps the cause
	}
	names := jsbridge.Names{Prefix: cfg.Worker.TopicPrefix, Group: s.group}
	c, err := newClient(nc, names, s)
	if err != nil {
		nc.Close()
		return nil, err
	}
	c.prov = jsbridge.ProvisionSettings(cfg, names)
	c.owned = true
	return c, nil
}

// New makes a client on a connection the caller owns: Close leaves it
// open. names gives the topic prefix and, unless WithGroup is passed, the
// group. Streams and buckets it has to create get the default limits and
// one replica (Connect takes them from the configuration).
func New(nc *nats.Conn, names jsbridge.Names, opts ...Option) (*Client, error) {
	s := apply(opts)
	if s.group != "" {
		names.Group = s.group
	}
	if err := schemas.CheckID("group", names.Group); err != nil {
		return nil, withKind(ErrInvalid, err)
	}
	return newClient(nc, names, s)
}

func newClient(nc *nats.Conn, names jsbridge.Names, s settings) (*Client, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return &Client{nc: nc, js: js, names: names, log: s.log.With("group", names.Group),
		prov: jsbridge.ProvisionConfig{Names: names, JobsMaxAge: DefaultJobsMaxAge}}, nil
}

// ForGroup returns a client of another group on the same connection. Its
// Close does nothing; the connection stays the receiver's.
func (c *Client) ForGroup(group string) (*Client, error) {
	if err := schemas.CheckID("group", group); err != nil {
		return nil, withKind(ErrInvalid, err)
	}
	names := c.names
	names.Group = group
	prov := c.prov
	prov.Names = names
	return &Client{nc: c.nc, js: c.js, names: names, log: c.log.With("group", group), prov: prov}, nil
}

// Names returns the subjects, keys and consumer names of the client's group.
func (c *Client) Names() jsbridge.Names { return c.names }

// Conn returns the client's NATS connection.
func (c *Client) Conn() *nats.Conn { return c.nc }

// Close closes the connection Connect opened once the server has everything
// the client published, waiting up to a few seconds for that. A flush is
// enough: every call of the client has had its answer, so nothing is
// pending but outgoing bytes, and a full drain would cost each command
// about 15 ms. For a client made by New or ForGroup it does nothing.
func (c *Client) Close() error {
	if !c.owned {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	defer c.nc.Close()
	if c.nc.IsClosed() {
		return nil
	}
	if err := c.nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("flush before close: %w", err)
	}
	return nil
}

// statusStore opens the status and claims buckets, creating the streams
// and buckets first when they are missing.
func (c *Client) statusStore(ctx context.Context) (*jsbridge.StatusStore, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.store != nil {
		return c.store, nil
	}
	a, err := c.openBuckets(ctx)
	if err != nil {
		return nil, err
	}
	c.store = jsbridge.NewStatusStore(a, c.log)
	return c.store, nil
}

// openBuckets binds to the status and claims buckets. When one is missing
// (nothing ever ran on this server), it creates the streams and buckets
// that are missing the way a worker does, so a task can wait for the first
// worker.
func (c *Client) openBuckets(ctx context.Context) (*jsbridge.Assets, error) {
	status, err := c.js.KeyValue(ctx, jsbridge.StatusBucket)
	var claims jetstream.KeyValue
	if err == nil {
		claims, err = c.js.KeyValue(ctx, jsbridge.ClaimsBucket)
	}
	switch {
	case err == nil:
		return &jsbridge.Assets{Status: status, Claims: claims}, nil
	case errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound):
		return c.provision(ctx)
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, nats.ErrNoResponders):
		return nil, withKind(ErrNotProvisioned, fmt.Errorf("JetStream is not enabled for this account on the NATS server: %w", err))
	}
	return nil, fmt.Errorf("open bucket: %w", err)
}

// provision creates the streams and buckets that are missing (not the
// group's consumer: that is the workers' business) and binds to those
// that exist without changing them: their settings are the workers' (the
// provision command's), whatever this client's configuration says.
func (c *Client) provision(ctx context.Context) (*jsbridge.Assets, error) {
	a, err := jsbridge.BindShared(ctx, c.js, c.prov, c.log)
	if err != nil {
		return nil, withKind(ErrNotProvisioned, fmt.Errorf("cannot create the streams and buckets: %w", err))
	}
	c.log.Debug("missing streams and buckets created")
	return a, nil
}

// provisioned marks err with ErrNotProvisioned when it says a stream or
// bucket is missing.
func provisioned(err error) error {
	if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
		return withKind(ErrNotProvisioned, err)
	}
	return err
}

// checkTaskID refuses an id that cannot be one (ErrInvalid).
func checkTaskID(id string) error {
	if err := schemas.CheckID("task id", id); err != nil {
		return withKind(ErrInvalid, err)
	}
	return nil
}
