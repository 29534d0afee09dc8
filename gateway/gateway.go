package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ansible-worker/ansible-worker/config"
	"github.com/ansible-worker/ansible-worker/jsbridge"
)

// Gateway joins an external MQTT 5 broker to a worker group: tasks and
// cancels published on the broker go to NATS, and every status change of
// the group's tasks goes to the broker, retained. Any number of gateways of
// a group may share a broker: a shared subscription gives each message to
// one of them, and one durable consumer hands out each status change once.
type Gateway struct {
	mqtt     config.MQTTConfig
	clientID string
	tasks    Tasks
	js       jetstream.JetStream
	names    jsbridge.Names
	log      *slog.Logger
}

// New makes the gateway of names' group to the broker of m, with MQTT
// client id clientID (stable across restarts: the broker keeps the
// gateway's session, and the messages that came meanwhile, under it).
func New(m config.MQTTConfig, clientID string, tasks Tasks, js jetstream.JetStream, names jsbridge.Names, log *slog.Logger) *Gateway {
	return &Gateway{mqtt: m, clientID: clientID, tasks: tasks, js: js, names: names, log: log}
}

// Subscriptions are the gateway's subscriptions: the group's task topic at
// QoS 2 and its cancel topics at QoS 1, shared by the group's gateways.
func (g *Gateway) Subscriptions() []paho.SubscribeOptions {
	share := "$share/" + g.names.MQTTShareGroup() + "/"
	return []paho.SubscribeOptions{
		{Topic: share + g.names.MQTTTaskTopic(), QoS: 2},
		{Topic: share + g.names.MQTTCancelTopic("+"), QoS: 1},
	}
}

// Run connects to the broker, calls ready once it is subscribed, and
// carries messages both ways until ctx ends. It fails only when the first
// connection does: a *SettingsError when the broker refuses the settings.
// After that the connection comes back by itself.
func (g *Gateway) Run(ctx context.Context, ready func()) error {
	inbox := make(chan Message, 2*receiveMaximum)
	onMessage := func(m Message) {
		select {
		case inbox <- m:
		case <-ctx.Done(): // not acknowledged: delivered again later
		}
	}
	b, err := DialBroker(ctx, g.mqtt, g.clientID, g.Subscriptions(), onMessage, g.log)
	if err != nil {
		return err
	}
	defer b.Close()
	g.log.Info("MQTT gateway running", "component", "mqtt-gateway", "broker", g.mqtt.Addr(), "tasks", g.names.MQTTTaskTopic(), "client_id", g.clientID)
	ready()
	var wg sync.WaitGroup
	wg.Go(func() { NewIntake(g.tasks, g.names, g.log).Run(ctx, inbox) })
	wg.Go(func() { _ = NewStatusMirror(g.js, g.names, b, BrokerMirror(g.names), g.log).Run(ctx) })
	wg.Wait()
	return nil
}

// Leave retires the gateway's client id: it carries what the broker kept in
// the session for it (tasks published while it was away), then unsubscribes
// and ends the session. Until a retired gateway does this, the broker keeps
// handing it a share of the new tasks, for mqtt.session_expiry. It returns
// once nothing arrived for quiet and everything received was carried.
func (g *Gateway) Leave(ctx context.Context, quiet time.Duration) error {
	inbox := make(chan Message, 2*receiveMaximum)
	var pending, last atomic.Int64
	onMessage := func(m Message) {
		pending.Add(1)
		last.Store(time.Now().UnixNano())
		ack := m.Ack
		m.Ack = func() error { defer pending.Add(-1); return ack() }
		select {
		case inbox <- m:
		case <-ctx.Done():
		}
	}
	b, err := DialBroker(ctx, g.mqtt, g.clientID, g.Subscriptions(), onMessage, g.log)
	if err != nil {
		return err
	}
	defer b.Close()
	last.Store(time.Now().UnixNano())
	ictx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { NewIntake(g.tasks, g.names, g.log).Run(ictx, inbox) })
	defer func() { stop(); wg.Wait() }()
	idle := func() bool {
		return pending.Load() == 0 && time.Since(time.Unix(0, last.Load())) >= quiet
	}
	if err := waitUntil(ctx, idle); err != nil {
		return err
	}
	if err := b.Leave(ctx); err != nil {
		return fmt.Errorf("leave the shared subscriptions: %w", err)
	}
	if err := waitUntil(ctx, func() bool { return pending.Load() == 0 }); err != nil {
		return err
	}
	g.log.Info("left the broker: the session of this client id is ended", "component", "mqtt-gateway", "client_id", g.clientID)
	return nil
}

// waitUntil polls cond until it holds or ctx ends.
func waitUntil(ctx context.Context, cond func() bool) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
