package schemas

import "time"

// Results of a cancel request (CancelReply.Result).
const (
	// CancelDone: the task was waiting and is now cancelled; it never runs.
	CancelDone = "cancelled"
	// CancelStopping: the task is running and is being stopped.
	CancelStopping = "stopping"
	// CancelFinished: the task had already finished; nothing changed.
	CancelFinished = "finished"
	// CancelUnknown: no such task in the group; nothing changed.
	CancelUnknown = "unknown"
)

// CancelReply answers a cancel request on <prefix>.<group>.tasks.<id>.cancel.
type CancelReply struct {
	TaskID  string `json:"task_id"`
	Result  string `json:"result"`
	State   string `json:"state,omitempty"`
	Worker  string `json:"worker,omitempty"`
	Message string `json:"message"`
}

// CancelWaiting is the compare-and-set change that cancels a waiting task:
// a queued status becomes cancelled at now; any other status, or none, is
// left alone (false). Workers and submitters apply the same change.
func CancelWaiting(cur *TaskStatus, now time.Time) (*TaskStatus, bool) {
	if cur == nil || cur.State != StateQueued {
		return nil, false
	}
	next := *cur
	next.State = StateCancelled
	next.CompletedAt = NewTime(now)
	next.SetError("cancelled before it started")
	return &next, true
}
