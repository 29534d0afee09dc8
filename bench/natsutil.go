//go:build linux

package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/schemas"
)

// names are the default group's subjects and keys, which every worker the
// suite starts serves.
var names = jsbridge.Names{Prefix: "ansible", Group: "production"}

// conn is the suite's own connection to a worker's server.
type conn struct {
	nc *nats.Conn
	js jetstream.JetStream
	kv jetstream.KeyValue // the status bucket
}

// dial connects to url and opens the status bucket, which the worker made
// before it said it was ready.
func dial(ctx context.Context, url string) (*conn, error) {
	nc, err := nats.Connect(url, nats.Name("ansible-worker-bench"))
	if err != nil {
		return nil, err
	}
	// Enough async publishes in flight to keep the server busy, and a
	// stall wait that rides out a slow fsync instead of failing.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(512))
	if err != nil {
		nc.Close()
		return nil, err
	}
	kv, err := js.KeyValue(ctx, jsbridge.StatusBucket)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("status bucket: %w", err)
	}
	return &conn{nc: nc, js: js, kv: kv}, nil
}

// taskMsg is a task of the default group running hello.yml.
func taskMsg(id string) *nats.Msg {
	body, _ := json.Marshal(map[string]any{"task_id": id, "playbook": "hello.yml", "inventory": "inventory/hosts"})
	return &nats.Msg{Subject: names.TaskSubject(), Data: body, Header: nats.Header{"Content-Type": {"application/json"}}}
}

// publishAsync publishes n messages made by msg with their ids as
// Nats-Msg-Id, as fast as the acks allow, and waits for every ack.
func (c *conn) publishAsync(ctx context.Context, n int, id func(int) string, msg func(string) *nats.Msg) error {
	futures := make([]jetstream.PubAckFuture, 0, n)
	for i := range n {
		f, err := c.js.PublishMsgAsync(msg(id(i)), jetstream.WithMsgID(id(i)), jetstream.WithStallWait(30*time.Second))
		if err != nil {
			return fmt.Errorf("publish %d: %w", i, err)
		}
		futures = append(futures, f)
	}
	select {
	case <-c.js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(5 * time.Minute):
		return fmt.Errorf("%d publishes not acknowledged after 5 minutes", c.js.PublishAsyncPending())
	}
	for i, f := range futures {
		select {
		case err := <-f.Err():
			return fmt.Errorf("publish %d: %w", i, err)
		default:
		}
	}
	return nil
}

// countStates watches the group's statuses (new ones only) and sends on
// done once want distinct tasks reached a state match accepts; the time
// that happened is sent.
func (c *conn) countStates(ctx context.Context, want int, match func(schemas.State) bool) (<-chan time.Time, error) {
	w, err := c.kv.Watch(ctx, names.Group+".*", jetstream.UpdatesOnly())
	if err != nil {
		return nil, err
	}
	done := make(chan time.Time, 1)
	go func() {
		defer func() { _ = w.Stop() }()
		seen := map[string]bool{}
		for e := range w.Updates() {
			if e == nil || e.Operation() != jetstream.KeyValuePut || seen[e.Key()] {
				continue
			}
			st, err := schemas.ParseTaskStatus(e.Value())
			if err != nil || !match(st.State) {
				continue
			}
			if seen[e.Key()] = true; len(seen) == want {
				done <- time.Now()
				return
			}
		}
	}()
	return done, nil
}

// waitTime waits for ch, ctx or a deadline.
func waitTime(ctx context.Context, ch <-chan time.Time, d time.Duration, what string) (time.Time, error) {
	select {
	case t := <-ch:
		return t, nil
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	case <-time.After(d):
		return time.Time{}, fmt.Errorf("%s: not after %s", what, d)
	}
}
