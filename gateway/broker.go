package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/ansible-worker/ansible-worker/config"
)

// Broker is an MQTT 5 connection to an external broker. It reconnects by
// itself with backoff and jitter, keeps its session on the broker (clean
// start off, a session expiry), so messages published while it is away are
// delivered when it is back, and acknowledges a received message only when
// told to.
type Broker struct {
	cm   *autopaho.ConnectionManager
	m    config.MQTTConfig
	id   string
	log  *slog.Logger
	subs []paho.SubscribeOptions

	// up reports the outcome of the first connection: nil, or why it
	// cannot be made.
	up      chan error
	first   sync.Once
	failed  atomic.Int64 // connection attempts failed in a row
	leaving atomic.Bool  // Close ends the session instead of keeping it
}

// receiveMaximum bounds the QoS 1 and 2 messages the broker sends before
// the gateway has acknowledged them: what a crash can leave unacknowledged.
const receiveMaximum = 32

// DialBroker connects to the broker of cfg.mqtt with client id id,
// subscribes to subs on every connection, and passes every message
// received to onMessage (which must not block for long; the message is
// acknowledged only by its Ack). It returns once the first connection and
// its subscriptions are up; a *SettingsError when the broker refuses the
// settings; or ctx's error.
func DialBroker(ctx context.Context, m config.MQTTConfig, id string, subs []paho.SubscribeOptions, onMessage func(Message), log *slog.Logger) (*Broker, error) {
	b := &Broker{m: m, id: id, subs: subs, log: log.With("component", "mqtt-broker", "broker", m.Addr()), up: make(chan error, 1)}
	acfg, err := b.clientConfig(onMessage)
	if err != nil {
		return nil, err
	}
	b.cm, err = autopaho.NewConnection(context.WithoutCancel(ctx), acfg)
	if err != nil {
		return nil, fmt.Errorf("MQTT broker %s: %w", m.Addr(), err)
	}
	select {
	case err = <-b.up:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// clientConfig is the autopaho configuration of the broker connection.
func (b *Broker) clientConfig(onMessage func(Message)) (autopaho.ClientConfig, error) {
	m := b.m
	tlsCfg, err := m.TLSConfig()
	if err != nil {
		return autopaho.ClientConfig{}, &SettingsError{Key: "mqtt", Err: err}
	}
	u := &url.URL{Scheme: "mqtt", Host: m.Addr()}
	if tlsCfg != nil {
		u.Scheme = "mqtts"
	}
	acfg := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{u},
		TlsCfg:                        tlsCfg,
		KeepAlive:                     uint16(m.Keepalive), // validated: 0-65535
		CleanStartOnInitialConnection: false,
		SessionExpiryInterval:         uint32(m.SessionExpiry),
		ReconnectBackoff:              autopaho.NewExponentialBackoff(250*time.Millisecond, 30*time.Second, time.Second, 2),
		ConnectTimeout:                10 * time.Second,
		ConnectUsername:               m.Username,
		ConnectPassword:               []byte(m.Password),
		OnConnectionUp:                b.connected,
		OnConnectionDown:              b.disconnected,
		OnConnectError:                b.connectFailed,
		ConnectPacketBuilder: func(cp *paho.Connect, _ *url.URL) (*paho.Connect, error) {
			if cp.Properties == nil {
				cp.Properties = &paho.ConnectProperties{}
			}
			cp.Properties.ReceiveMaximum = ptr(uint16(receiveMaximum))
			return cp, nil
		},
	}
	acfg.DisconnectPacketBuilder = func() *paho.Disconnect {
		d := &paho.Disconnect{ReasonCode: 0}
		if b.leaving.Load() {
			d.Properties = &paho.DisconnectProperties{SessionExpiryInterval: ptr(uint32(0))}
		}
		return d
	}
	acfg.ClientID = b.id
	acfg.EnableManualAcknowledgment = true
	acfg.SendAcksInterval = 20 * time.Millisecond
	acfg.OnServerDisconnect = b.serverDisconnect
	acfg.OnPublishReceived = []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
		onMessage(Message{Topic: pr.Packet.Topic, Payload: pr.Packet.Payload, QoS: pr.Packet.QoS,
			Ack: func() error { return pr.Client.Ack(pr.Packet) }})
		return true, nil
	}}
	return acfg, nil
}

// Message is one message received from the broker.
type Message struct {
	Topic   string
	Payload []byte
	QoS     byte
	// Ack acknowledges the message: the broker forgets it. Until then it
	// is delivered again when the gateway reconnects.
	Ack func() error
}

// connected subscribes (again: a broker may have lost the session) without
// blocking the connection's goroutine.
func (b *Broker) connected(cm *autopaho.ConnectionManager, ack *paho.Connack) {
	b.failed.Store(0)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := b.subscribe(ctx, cm)
		if err != nil {
			b.log.Error("MQTT subscription failed", "err", err)
		} else {
			b.log.Info("connected to the MQTT broker", "client_id", b.id, "session_present", ack.SessionPresent)
		}
		b.first.Do(func() { b.up <- err })
	}()
}

// subscribe subscribes to every filter, failing on any refusal.
func (b *Broker) subscribe(ctx context.Context, cm *autopaho.ConnectionManager) error {
	sa, err := cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: b.subs})
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	for i, rc := range sa.Reasons {
		if rc >= 0x80 && i < len(b.subs) {
			return &SettingsError{Key: "mqtt.username", Err: fmt.Errorf("the broker at %s refused the subscription to %s (SUBACK reason 0x%02X): it must allow this client to subscribe to it, and support MQTT 5 shared subscriptions",
				b.m.Addr(), b.subs[i].Topic, rc)}
		}
	}
	return nil
}

func (b *Broker) disconnected() bool {
	b.log.Warn("lost the connection to the MQTT broker; reconnecting")
	return true
}

// connectFailed ends the first connection on a settings problem; other
// failures are retried, and logged sparingly.
func (b *Broker) connectFailed(err error) {
	n := b.failed.Add(1)
	if p := settingsProblem(err, b.m); p != nil {
		b.first.Do(func() { b.up <- p })
		b.log.Error("the MQTT broker refused the connection", "err", p)
		return
	}
	if n == 1 || n%20 == 0 {
		log := b.log
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			// What a TLS port does to plain MQTT, and a plain port to TLS.
			log = log.With("hint", "the broker closed the connection before answering: do mqtt.port and mqtt.tls_enabled agree?")
		}
		log.Warn("cannot connect to the MQTT broker; retrying", "attempts", n, "err", err)
	}
}

func (b *Broker) serverDisconnect(d *paho.Disconnect) {
	if d.ReasonCode == rcSessionTakenOver {
		b.log.Error("another MQTT client connected with the same client id: give each gateway its own mqtt.client_id", "client_id", b.id)
		return
	}
	b.log.Warn("the MQTT broker closed the connection", "reason_code", fmt.Sprintf("0x%02X", d.ReasonCode))
}

// Publish publishes one message at QoS 1 and returns once the broker has
// acknowledged it. It waits for the connection while it is down.
func (b *Broker) Publish(ctx context.Context, topic string, payload []byte, retain bool) error {
	if err := b.cm.AwaitConnection(ctx); err != nil {
		return fmt.Errorf("publish %s: no connection to the MQTT broker: %w", topic, err)
	}
	_, err := b.cm.Publish(ctx, &paho.Publish{QoS: 1, Retain: retain, Topic: topic, Payload: payload,
		Properties: &paho.PublishProperties{ContentType: "application/json", PayloadFormat: ptr(byte(1))}})
	if err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	return nil
}

// Leave unsubscribes and makes Close end the session on the broker, so
// the broker gives this client id no more messages.
func (b *Broker) Leave(ctx context.Context) error {
	filters := make([]string, len(b.subs))
	for i, s := range b.subs {
		filters[i] = s.Topic
	}
	if _, err := b.cm.Unsubscribe(ctx, &paho.Unsubscribe{Topics: filters}); err != nil {
		return fmt.Errorf("unsubscribe: %w", err)
	}
	b.leaving.Store(true)
	return nil
}

// Close disconnects. The session stays on the broker until it expires,
// unless Leave was called.
func (b *Broker) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.cm.Disconnect(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		b.log.Debug("MQTT disconnect", "err", err)
	}
}

func ptr[T any](v T) *T { return &v }
