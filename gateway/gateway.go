package gateway

import (
	"context"
	"log/slog"
	"sync"

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
