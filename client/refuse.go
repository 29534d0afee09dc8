package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/schemas"
)

// Refuse records that a submission of task id was refused before it
// reached the queue (a gateway that could not take it in, for example): the
// task gets a failed status whose error_message is reason, so whoever
// follows the task learns why. A task that already has a status keeps it
// and the error wraps ErrTaskExists: a refusal never overwrites the status
// of another submission of the same id.
func (c *Client) Refuse(ctx context.Context, id, reason string) error {
	if err := checkTaskID(id); err != nil {
		return err
	}
	store, err := c.statusStore(ctx)
	if err != nil {
		return err
	}
	now := schemas.NewTime(time.Now())
	st := &schemas.TaskStatus{TaskID: id, State: schemas.StateFailed, CreatedAt: now, CompletedAt: now,
		Output: map[string]any{}, Group: c.names.Group}
	st.SetError(reason)
	created, err := store.Create(ctx, st)
	if err != nil {
		return fmt.Errorf("record the refusal of %s: %w", id, err)
	}
	if !created {
		return withKind(ErrTaskExists, fmt.Errorf("task id %s already has a status in group %s: refusal not recorded", id, c.names.Group))
	}
	return nil
}

// RespondRefused answers a named-job request that cannot be submitted
// (seed 003's form with an unknown job, a bad request id, ...) with a
// failure response on the group's responses subject, in the request's
// format, as a worker answers one it refuses. The response's message id
// comes from the request and the reason, so answering twice stores one.
func (c *Client) RespondRefused(ctx context.Context, n schemas.NamedRequest, format schemas.RequestFormat, reason string) error {
	data, err := schemas.JobResponse{JobName: n.JobName, RequestID: n.RequestID, Result: schemas.ResultFailure,
		Message: reason}.Encode(format)
	if err != nil {
		return withKind(ErrInvalid, fmt.Errorf("encode the response: %w", err))
	}
	if _, err := c.statusStore(ctx); err != nil { // the streams exist from here on
		return err
	}
	sum := sha256.Sum256([]byte(n.JobName + "\x00" + n.RequestID + "\x00" + reason))
	id := "refused-" + hex.EncodeToString(sum[:12])
	return jsbridge.NewResponses(c.js, c.names).Respond(ctx, id, data, format)
}
