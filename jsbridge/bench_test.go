package jsbridge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/schemas"
)

// benchEnv is an embedded nats-server with JetStream and the provisioned
// assets of group "bench", as a worker sees them at run time.
type benchEnv struct {
	js     jetstream.JetStream
	assets *jsbridge.Assets
	pc     jsbridge.ProvisionConfig
	log    *slog.Logger
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: b.TempDir(), NoLog: true, NoSigs: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		b.Fatal("nats-server did not start")
	}
	b.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	pc := jsbridge.ProvisionConfig{Names: jsbridge.Names{Prefix: "ansible", Group: "bench"}}
	assets, err := jsbridge.Provision(context.Background(), js, pc, log)
	if err != nil {
		b.Fatal(err)
	}
	return &benchEnv{js: js, assets: assets, pc: pc, log: log}
}

// benchEvent is a typical runner_on_ok event as the worker publishes it,
// about 1.5 KB of JSON.
func benchEvent(b *testing.B) []byte {
	b.Helper()
	data := map[string]any{
		"playbook": "site.yml", "playbook_uuid": "3a3db50a-6a53-4672-9ca6-faaff4459fa1",
		"play": "Configure web servers", "play_uuid": "02fc0000-0001-8a01-6dac-000000000002", "play_pattern": "web",
		"task": "Install packages", "task_uuid": "02fc0000-0001-8a01-6dac-000000000004",
		"task_action": "ansible.builtin.apt", "resolved_action": "ansible.builtin.apt", "task_args": "",
		"task_path": "/srv/playbooks/roles/web/tasks/main.yml:12", "host": "web-01.example.org",
		"remote_addr": "web-01.example.org", "start": "2026-11-22T16:31:24.769852+00:00",
		"end": "2026-11-22T16:31:24.804705+00:00", "duration": 0.034853, "event_loop": nil,
		"uuid": "8db9dadc-c04d-4dfd-a658-bbf4eaf7bf97",
		"res": map[string]any{
			"changed": true, "cache_updated": false, "cache_update_time": 1795365076,
			"stdout":                  "Reading package lists...\nBuilding dependency tree...\nReading state information...\nThe following NEW packages will be installed:\n  nginx nginx-common\n0 upgraded, 2 newly installed, 0 to remove and 0 not upgraded.\n",
			"stderr":                  "",
			"_ansible_no_log":         false,
			"_ansible_verbose_always": false,
		},
	}
	raw, err := json.Marshal(data)
	if err != nil {
		b.Fatal(err)
	}
	ev := schemas.Event{
		UUID: "8db9dadc-c04d-4dfd-a658-bbf4eaf7bf97", Counter: 12,
		Stdout: "changed: [web-01.example.org]", StartLine: 20, EndLine: 21, RunnerIdent: "bench-task",
		Event: "runner_on_ok", PID: 3371, Created: "2026-11-22T16:31:24.804854+00:00",
		ParentUUID: "02fc0000-0001-8a01-6dac-000000000004", EventData: raw,
	}
	out, err := json.Marshal(ev)
	if err != nil {
		b.Fatal(err)
	}
	if n := len(out); n < 1200 || n > 1800 {
		b.Fatalf("event is %d bytes, want about 1.5 KB", n)
	}
	return out
}

// BenchmarkPublish is one event published and acknowledged by the stream
// (what the outbox does per event).
func BenchmarkPublish(b *testing.B) {
	env := newBenchEnv(b)
	pub := jsbridge.NewPublisher(env.js, nil, env.log)
	data := benchEvent(b)
	subject := jsbridge.EventSubject("bench", "publish")
	ctx := context.Background()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if err := pub.Publish(ctx, subject, fmt.Sprintf("publish.1.1.e%d", i), data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOutbox is a run's worth of events (1000) queued on an Outbox and
// flushed: the throughput of a task's event stream.
func BenchmarkOutbox(b *testing.B) {
	const events = 1000
	env := newBenchEnv(b)
	pub := jsbridge.NewPublisher(env.js, nil, env.log)
	data := benchEvent(b)
	ctx := context.Background()
	b.SetBytes(int64(len(data)) * events)
	n := 0
	for b.Loop() {
		n++
		task := fmt.Sprintf("outbox%d", n)
		subject := jsbridge.EventSubject("bench", task)
		o := pub.NewOutbox(ctx)
		for i := 1; i <= events; i++ {
			o.Add(subject, fmt.Sprintf("%s.1.1.e%d", task, i), data)
		}
		if err := o.Close(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*events)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkProvisionIdempotent is a worker's start-up (Bind: check and bind) against a
// server that already has every stream, bucket and consumer.
func BenchmarkProvisionIdempotent(b *testing.B) {
	env := newBenchEnv(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := jsbridge.Bind(ctx, env.js, env.pc, env.log); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStatusPut is one TaskStatus update (a heartbeat or the final
// status) written to the KV bucket.
func BenchmarkStatusPut(b *testing.B) {
	env := newBenchEnv(b)
	store := jsbridge.NewStatusStore(env.assets, env.log)
	now := time.Now()
	rc := 0
	st := &schemas.TaskStatus{
		TaskID: "status-bench", State: schemas.StateRunning, CreatedAt: schemas.NewTime(now),
		StartedAt: schemas.NewTime(now), Output: map[string]any{"greeted": "world", "version": "1.2.3"},
		Group: "bench", Worker: "bench-host", Attempt: 1, ReturnCode: &rc, DurationSeconds: 1.5,
	}
	st.SetCounts(schemas.Counts{OK: 12, Changed: 3, Total: 15})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := store.Put(ctx, st); err != nil {
			b.Fatal(err)
		}
	}
}
