package client

import (
	"context"
	"fmt"
	"time"

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
