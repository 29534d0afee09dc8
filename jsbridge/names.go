package jsbridge

import "strings"

// Names of the JetStream assets every worker provisions.
const (
	// TasksStream holds submitted tasks with work-queue retention.
	TasksStream = "ANSIBLE_TASKS"
	// EventsStream keeps runner events and statuses for replay.
	EventsStream = "ANSIBLE_EVENTS"
	// ResponsesStream keeps the answers to named-job requests, so a
	// consumer that starts later still reads them.
	ResponsesStream = "ANSIBLE_RESPONSES"
	// StatusBucket is the KV bucket with the latest TaskStatus of each task.
	StatusBucket = "ansible_status"
	// ClaimsBucket records which stream message first claimed a task id, so a
	// second submission of the same id is recognised as a duplicate.
	ClaimsBucket = "ansible_claims"
	// RunnerPrefix starts every runner event and status subject.
	RunnerPrefix = "pub.ansible.runner"
	// IntakePrefix starts the subjects on which the tasks stream republishes
	// each stored submission: IntakePrefix.<prefix>.<group>.tasks.
	IntakePrefix = "ansible-worker.intake"
)

// Names derives the subjects, keys and consumer names of one group.
type Names struct {
	Prefix string // topic_prefix, "ansible" by default
	Group  string // group_name
}

// TaskSubject is where tasks of the group are submitted: <prefix>.<group>.tasks.
func (n Names) TaskSubject() string { return n.Prefix + "." + n.Group + ".tasks" }

// TasksWildcard is the subject filter of the tasks stream: <prefix>.*.tasks.
func (n Names) TasksWildcard() string { return n.Prefix + ".*.tasks" }

// ResponseSubject is where the group's named-job requests are answered:
// <prefix>.<group>.responses (seed 003's response queue).
func (n Names) ResponseSubject() string { return n.Prefix + "." + n.Group + ".responses" }

// ResponsesWildcard is the subject filter of the responses stream.
func (n Names) ResponsesWildcard() string { return n.Prefix + ".*.responses" }

// IntakeSubject is where the group's stored submissions are republished.
func (n Names) IntakeSubject() string { return IntakePrefix + "." + n.TaskSubject() }

// CancelSubject is where an empty message cancels task id.
func (n Names) CancelSubject(id string) string { return n.TaskSubject() + "." + id + ".cancel" }

// CancelWildcard matches every cancel subject of the group.
func (n Names) CancelWildcard() string { return n.TaskSubject() + ".*.cancel" }

// Consumer is the durable consumer shared by all workers of the group.
func (n Names) Consumer() string { return "ansible-worker-" + n.Group }

// StatusKey is the KV key of a task's status: <group>.<id>.
func (n Names) StatusKey(id string) string { return n.Group + "." + id }

// CancelKey is the key, in the claims bucket, that records a cancel request.
func (n Names) CancelKey(id string) string { return n.Group + "." + id + ".cancel" }

// MQTTTaskTopic is the MQTT topic tasks are submitted on.
func (n Names) MQTTTaskTopic() string { return n.Prefix + "/" + n.Group + "/tasks" }

// MQTTStatusTopic is the retained MQTT topic of a task's status.
func (n Names) MQTTStatusTopic(id string) string { return n.MQTTTaskTopic() + "/" + id + "/status" }

// MQTTCancelTopic is the MQTT topic that cancels a task.
func (n Names) MQTTCancelTopic(id string) string { return n.MQTTTaskTopic() + "/" + id + "/cancel" }

// MQTTShareGroup is the shared-subscription group of the gateways of the
// group on an MQTT 5 broker: each message goes to one of them.
func (n Names) MQTTShareGroup() string { return "ansible-worker-" + n.Group }

// EventSubject is where runner events of a task are published.
func EventSubject(subjectID, id string) string {
	return RunnerPrefix + "." + subjectID + "." + id + ".event"
}

// RunnerStatusSubject is where runner statuses of a task are published.
func RunnerStatusSubject(subjectID, id string) string {
	return RunnerPrefix + "." + subjectID + "." + id + ".status"
}

// TaskRunnerFilter matches the events and statuses of one task, whatever
// subject id the worker that ran it used.
func TaskRunnerFilter(id string) string { return RunnerPrefix + ".*." + id + ".>" }

// SanitizeSubjectID makes a host name usable as one subject token.
func SanitizeSubjectID(s string) string {
	return strings.NewReplacer(".", "-", " ", "-", "*", "-", ">", "-").Replace(s)
}
