package schemas

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
