// Package client submits, inspects, follows and cancels ansible-worker
// tasks over NATS JetStream. It is what the ansible-worker CLI uses, and
// what other Go programs (an MQTT gateway, a jobs intake, a deploy tool) use
// to talk to a group of workers.
//
// A Client is bound to one worker group (see WithGroup and Client.ForGroup)
// and needs the streams and buckets a worker provisions when it starts:
//
//	cl, err := client.Connect(ctx, cfg, client.WithGroup("production"))
//	if err != nil { ... }
//	defer cl.Close()
//	rcpt, err := cl.Submit(ctx, schemas.TaskRequest{Playbook: "hello.yml", Inventory: "inventory/hosts"})
//	final, err := cl.Follow(ctx, rcpt.TaskID, true, func(u jsbridge.Update) { ... })
//
// Submit records the task as queued before it publishes it, which is also
// how a task id already in use is refused, and publishes with the task id
// as Nats-Msg-Id, so a retried publish counts once. Status, List and Watch
// read the KV bucket of task statuses; Follow replays and follows one
// task's runner events; Cancel asks the group's workers to cancel a task.
//
// Errors wrap the sentinel errors of this package (ErrInvalid, ErrNotFound,
// ErrTaskExists, ErrNotProvisioned) and of jsbridge (ErrUnreachable,
// ErrSettings, ErrNoWorker), so callers can tell them apart with errors.Is.
package client
