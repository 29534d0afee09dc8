package jsbridge

import (
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
)

// SubscribeIntake calls fn with every submission stored for the group, on
// one worker of the group (a queue subscription). Delivery is at most once:
// a submission stored while no worker listens is seen only when pulled.
//
// Anyone allowed to publish on the intake subject can forge a message there,
// so what fn gets is only a claim: check it with Queue.Authentic before
// acting on it.
func SubscribeIntake(nc *nats.Conn, names Names, fn func(Submission)) (*nats.Subscription, error) {
	sub, err := nc.QueueSubscribe(names.IntakeSubject(), names.Consumer(), func(m *nats.Msg) {
		seq, err := strconv.ParseUint(lastHeader(m.Header, "Nats-Sequence"), 10, 64)
		if err != nil {
			return
		}
		ts, err := time.Parse(time.RFC3339Nano, lastHeader(m.Header, "Nats-Time-Stamp"))
		if err != nil {
			ts = time.Now()
		}
		fn(Submission{Seq: seq, Stored: ts, Data: m.Data})
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", names.IntakeSubject(), err)
	}
	return sub, nil
}

// lastHeader is the last value of header key. The stream appends its own
// headers after those of the stored message, so a submission that carries a
// Nats-Sequence of its own still yields the stream's.
func lastHeader(h nats.Header, key string) string {
	v := h.Values(key)
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}
