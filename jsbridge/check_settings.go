package jsbridge

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The settings of streams (and of the streams under buckets and object
// stores) and of consumers that provisioning manages. Values print as the
// nats CLI's JSON names them; durations as Go prints them.

type (
	streamSetting   = setting[jetstream.StreamConfig]
	consumerSetting = setting[jetstream.ConsumerConfig]
)

// jsonName is the name v has in JetStream's JSON ("workqueue", "file").
func jsonName(v json.Marshaler) string {
	b, err := v.MarshalJSON()
	if err != nil {
		return fmt.Sprint(v)
	}
	return strings.Trim(string(b), `"`)
}

func durationSetting[C any](name, source string, want time.Duration, field func(*C) *time.Duration) setting[C] {
	return setting[C]{name: name, source: source, want: want.String(),
		get: func(c *C) string { return field(c).String() },
		set: func(c *C) { *field(c) = want }}
}

func intSetting[C any](name, source string, want int, field func(*C) *int) setting[C] {
	return setting[C]{name: name, source: source, want: strconv.Itoa(want),
		get: func(c *C) string { return strconv.Itoa(*field(c)) },
		set: func(c *C) { *field(c) = want }}
}

// limit prints a size limit: 0 and -1 both mean none.
func limit(n int64) string {
	if n <= 0 {
		return "unlimited"
	}
	return strconv.FormatInt(n, 10)
}

func replicasSetting(want int) streamSetting {
	return intSetting("replicas", "nats.replicas", want, func(c *jetstream.StreamConfig) *int { return &c.Replicas })
}

func maxAgeSetting(name, source string, want time.Duration) streamSetting {
	return durationSetting(name, source, want, func(c *jetstream.StreamConfig) *time.Duration { return &c.MaxAge })
}

// duplicatesSetting is the Nats-Msg-Id window; only the tasks stream's
// matters to a worker.
func duplicatesSetting(want time.Duration, loose bool) streamSetting {
	s := durationSetting("duplicate_window", "", want, func(c *jetstream.StreamConfig) *time.Duration { return &c.Duplicates })
	s.loose = loose
	return s
}

func storageSetting() streamSetting {
	return streamSetting{name: "storage", want: jsonName(jetstream.FileStorage), fixed: always[jetstream.StreamConfig],
		get: func(c *jetstream.StreamConfig) string { return jsonName(c.Storage) },
		set: func(c *jetstream.StreamConfig) { c.Storage = jetstream.FileStorage }}
}

// retentionSetting: JetStream changes retention in place, but never to
// or from work queue.
func retentionSetting(want jetstream.RetentionPolicy) streamSetting {
	return streamSetting{name: "retention", want: jsonName(want),
		get: func(c *jetstream.StreamConfig) string { return jsonName(c.Retention) },
		set: func(c *jetstream.StreamConfig) { c.Retention = want },
		fixed: func(c *jetstream.StreamConfig) bool {
			return want == jetstream.WorkQueuePolicy || c.Retention == jetstream.WorkQueuePolicy
		}}
}

func discardSetting(want jetstream.DiscardPolicy) streamSetting {
	return streamSetting{name: "discard", want: jsonName(want),
		get: func(c *jetstream.StreamConfig) string { return jsonName(c.Discard) },
		set: func(c *jetstream.StreamConfig) { c.Discard = want }}
}

func maxBytesSetting(source string, want int64) streamSetting {
	return streamSetting{name: "max_bytes", source: source, want: limit(want),
		get: func(c *jetstream.StreamConfig) string { return limit(c.MaxBytes) },
		set: func(c *jetstream.StreamConfig) { c.MaxBytes = max(want, -1) }}
}

func maxMsgSizeSetting(source string, want int32) streamSetting {
	return streamSetting{name: "max_msg_size", source: source, want: limit(int64(want)),
		get: func(c *jetstream.StreamConfig) string { return limit(int64(c.MaxMsgSize)) },
		set: func(c *jetstream.StreamConfig) { c.MaxMsgSize = max(want, -1) }}
}

// historySetting is a bucket's history, which no worker relies on.
func historySetting(want int64) streamSetting {
	return streamSetting{name: "history", want: strconv.FormatInt(want, 10), loose: true,
		get: func(c *jetstream.StreamConfig) string { return strconv.FormatInt(c.MaxMsgsPerSubject, 10) },
		set: func(c *jetstream.StreamConfig) { c.MaxMsgsPerSubject = want }}
}

// subjectsSetting wants need among the subjects; the others, added for
// other prefixes, stay (and show in the wanted value).
func subjectsSetting(source string, need ...string) streamSetting {
	missing := func(c *jetstream.StreamConfig) []string {
		var out []string
		for _, s := range need {
			if !slices.Contains(c.Subjects, s) {
				out = append(out, s)
			}
		}
		return out
	}
	show := func(subjects []string) string { return "[" + strings.Join(subjects, " ") + "]" }
	return streamSetting{name: "subjects", source: source, want: show(need),
		wantFor: func(c *jetstream.StreamConfig) string { return show(append(slices.Clone(c.Subjects), missing(c)...)) },
		get:     func(c *jetstream.StreamConfig) string { return show(c.Subjects) },
		holds:   func(c *jetstream.StreamConfig) bool { return len(missing(c)) == 0 },
		set:     func(c *jetstream.StreamConfig) { c.Subjects = append(slices.Clone(c.Subjects), missing(c)...) }}
}

// republishSetting is the tasks stream's echo of each stored submission,
// which the workers' intake relies on.
func republishSetting(want *jetstream.RePublish) streamSetting {
	show := func(r *jetstream.RePublish) string {
		if r == nil {
			return "none"
		}
		s := r.Source + " to " + r.Destination
		if r.HeadersOnly {
			s += " (headers only)"
		}
		return s
	}
	return streamSetting{name: "republish", want: show(want),
		get: func(c *jetstream.StreamConfig) string { return show(c.RePublish) },
		set: func(c *jetstream.StreamConfig) { r := *want; c.RePublish = &r }}
}

func filterSetting(source, want string) consumerSetting {
	return consumerSetting{name: "filter_subject", source: source, want: want,
		get: func(c *jetstream.ConsumerConfig) string {
			if len(c.FilterSubjects) > 0 {
				return "[" + strings.Join(c.FilterSubjects, " ") + "]"
			}
			return c.FilterSubject
		},
		set: func(c *jetstream.ConsumerConfig) { c.FilterSubject, c.FilterSubjects = want, nil }}
}

func ackPolicySetting(want jetstream.AckPolicy) consumerSetting {
	return consumerSetting{name: "ack_policy", want: jsonName(want), fixed: always[jetstream.ConsumerConfig],
		get: func(c *jetstream.ConsumerConfig) string { return jsonName(c.AckPolicy) },
		set: func(c *jetstream.ConsumerConfig) { c.AckPolicy = want }}
}

func deliverPolicySetting(want jetstream.DeliverPolicy) consumerSetting {
	return consumerSetting{name: "deliver_policy", want: jsonName(want), fixed: always[jetstream.ConsumerConfig],
		get: func(c *jetstream.ConsumerConfig) string { return jsonName(c.DeliverPolicy) },
		set: func(c *jetstream.ConsumerConfig) { c.DeliverPolicy = want }}
}

func ackWaitSetting(source string, want time.Duration) consumerSetting {
	return durationSetting("ack_wait", source, want, func(c *jetstream.ConsumerConfig) *time.Duration { return &c.AckWait })
}

func maxDeliverSetting(want int) consumerSetting {
	return intSetting("max_deliver", "", want, func(c *jetstream.ConsumerConfig) *int { return &c.MaxDeliver })
}

func maxAckPendingSetting(want int, loose bool) consumerSetting {
	s := intSetting("max_ack_pending", "", want, func(c *jetstream.ConsumerConfig) *int { return &c.MaxAckPending })
	s.loose = loose
	return s
}
