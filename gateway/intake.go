package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ansible-worker/ansible-worker/client"
	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/retry"
	"github.com/ansible-worker/ansible-worker/schemas"
)

// Tasks is what the gateway does on the NATS side; *client.Client is one.
type Tasks interface {
	// SubmitJSON stores a task request in the tasks stream.
	SubmitJSON(ctx context.Context, body []byte) (*client.Receipt, error)
	// Refuse gives task id a failed status saying why it was refused.
	Refuse(ctx context.Context, id, reason string) error
	// RespondRefused answers a named-job request it refused.
	RespondRefused(ctx context.Context, n schemas.NamedRequest, format schemas.RequestFormat, reason string) error
	// Cancel asks the group's workers to cancel task id.
	Cancel(ctx context.Context, id string) (jsbridge.CancelReply, error)
}

// Intake moves what arrives on the broker's task and cancel topics to
// NATS, one message at a time and in order, and acknowledges each message
// only once it is carried: stored in the tasks stream, refused with a
// status, or answered by the workers.
type Intake struct {
	tasks Tasks
	names jsbridge.Names
	log   *slog.Logger
}

// NewIntake carries the messages of names' group to tasks.
func NewIntake(tasks Tasks, names jsbridge.Names, log *slog.Logger) *Intake {
	return &Intake{tasks: tasks, names: names, log: log.With("component", "mqtt-intake")}
}

// attemptTimeout bounds one attempt to carry a message.
const attemptTimeout = 15 * time.Second

// Run handles the messages of inbox until ctx ends. A message it could not
// carry when ctx ends is not acknowledged, so the broker delivers it again.
func (in *Intake) Run(ctx context.Context, inbox <-chan Message) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-inbox:
			if !in.Handle(ctx, m) {
				return
			}
			if err := m.Ack(); err != nil {
				in.log.Warn("MQTT acknowledgement not sent; the broker will deliver the message again", "topic", m.Topic, "err", err)
			}
		}
	}
}

// Handle carries one message, retrying what may succeed later; false when
// ctx ended first.
func (in *Intake) Handle(ctx context.Context, m Message) bool {
	var carry func(context.Context) error
	switch id, isCancel := in.cancelID(m.Topic); {
	case m.Topic == in.names.MQTTTaskTopic():
		carry = func(ctx context.Context) error { return in.task(ctx, m.Payload) }
	case isCancel:
		carry = func(ctx context.Context) error { return in.cancel(ctx, id) }
	default:
		// A subscription an older configuration left in the session.
		in.log.Debug("ignoring a message on a topic the gateway does not serve", "topic", m.Topic)
		return true
	}
	err := retry.Do(ctx, retry.Policy{Initial: 200 * time.Millisecond, Max: 10 * time.Second}, func(ctx context.Context) error {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		defer cancel()
		return carry(actx)
	}, func(attempt int, err error) {
		if attempt == 1 || attempt%10 == 0 {
			in.log.Warn("cannot carry an MQTT message to NATS yet; retrying (the broker keeps it meanwhile)", "topic", m.Topic, "attempts", attempt, "err", err)
		}
	})
	return err == nil
}

// cancelID reads the task id of a cancel topic.
func (in *Intake) cancelID(topic string) (string, bool) {
	rest, ok := strings.CutPrefix(topic, in.names.MQTTTaskTopic()+"/")
	if !ok {
		return "", false
	}
	id, ok := strings.CutSuffix(rest, "/cancel")
	return id, ok && id != "" && !strings.Contains(id, "/")
}

// task stores one task request; nil when it is done with, retried or not.
func (in *Intake) task(ctx context.Context, body []byte) error {
	pr, perr := schemas.ParseRequest(body)
	req := pr.Task
	if perr != nil && pr.Named != nil {
		if err := in.tasks.RespondRefused(ctx, *pr.Named, pr.Format, perr.Error()); err != nil {
			return fmt.Errorf("answer refused request %s: %w", pr.Named.RequestID, err)
		}
	}
	if perr != nil {
		return in.refuse(ctx, req.TaskID, perr.Error())
	}
	rcpt, err := in.tasks.SubmitJSON(ctx, body)
	switch {
	case err == nil:
		in.log.Info("task taken in from MQTT", "task_id", rcpt.TaskID, "seq", rcpt.Sequence)
		return nil
	case errors.Is(err, client.ErrTaskExists):
		// A delivery again after a crash, or an id in use: the first
		// submission's status stays.
		in.log.Warn("task not taken in: its id was already submitted", "task_id", req.TaskID, "err", err)
		return nil
	case errors.Is(err, client.ErrInvalid):
		return in.refuse(ctx, req.TaskID, err.Error())
	case tooLarge(err):
		return in.refuse(ctx, req.TaskID, fmt.Sprintf("task request of %d bytes is larger than the tasks stream takes (nats.tasks_max_msg_size): %v", len(body), err))
	}
	return fmt.Errorf("submit task %s: %w", req.TaskID, err)
}

// tooLarge tells a request NATS will never take.
func tooLarge(err error) bool {
	return errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, jetstream.ErrStreamMessageExceedsMaximum)
}

// refuse records why a request was refused on its status, when its id can
// be read; a payload without one is only logged.
func (in *Intake) refuse(ctx context.Context, id, reason string) error {
	log := in.log.With("task_id", id, "reason", clip(reason))
	if id == "" {
		log.Warn("message on the task topic refused: no task id can be read")
		return nil
	}
	err := in.tasks.Refuse(ctx, id, reason)
	switch {
	case err == nil:
		log.Warn("task refused")
		return nil
	case errors.Is(err, client.ErrTaskExists), errors.Is(err, client.ErrInvalid):
		log.Warn("task refused; its id already has a status, which stays")
		return nil
	}
	return err
}

// cancel asks the workers to cancel task id.
func (in *Intake) cancel(ctx context.Context, id string) error {
	r, err := in.tasks.Cancel(ctx, id)
	switch {
	case errors.Is(err, client.ErrInvalid):
		in.log.Warn("cancel refused", "err", err)
		return nil
	case errors.Is(err, jsbridge.ErrNoWorker):
		// Running on a worker that does not answer: a worker that comes
		// back stops it when asked again; nothing to carry now.
		in.log.Warn("cancel not carried: no worker answers for the running task", "task_id", id)
		return nil
	case err != nil:
		return fmt.Errorf("cancel %s: %w", id, err)
	}
	in.log.Info("cancel carried from MQTT", "task_id", id, "result", r.Result, "message", r.Message)
	return nil
}

// clip bounds text from a payload that goes to the log.
func clip(s string) string {
	const max = 200
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
