package jsbridge

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ansible-worker/ansible-worker/retry"
	"github.com/ansible-worker/ansible-worker/schemas"
)

// Responses publishes the answers to the group's named-job requests on
// <prefix>.<group>.responses, stored in ResponsesStream.
type Responses struct {
	js    jetstream.JetStream
	names Names
}

// NewResponses returns the responses of the group names.
func NewResponses(js jetstream.JetStream, names Names) *Responses {
	return &Responses{js: js, names: names}
}

// Respond stores one encoded response with id as its Nats-Msg-Id, so a
// retried publish is stored once; it retries until ctx ends.
func (r *Responses) Respond(ctx context.Context, id string, data []byte, format schemas.RequestFormat) error {
	msg := &nats.Msg{Subject: r.names.ResponseSubject(), Data: data, Header: nats.Header{}}
	msg.Header.Set("Content-Type", contentType(format))
	err := retry.Do(ctx, retry.Policy{Initial: 100 * time.Millisecond, Max: 2 * time.Second}, func(ctx context.Context) error {
		_, err := r.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id))
		return err
	}, nil)
	if err != nil {
		return fmt.Errorf("response %s: %w", id, err)
	}
	return nil
}

// contentType is the media type of a response in format.
func contentType(f schemas.RequestFormat) string {
	if f == schemas.FormatYAML {
		return "application/yaml"
	}
	return "application/json"
}
