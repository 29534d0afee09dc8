package worker

import (
	"encoding/json"
	"fmt"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// truncatedMark ends stdout that was cut to fit a message.
const truncatedMark = "\n[ansible-worker: output truncated to fit the NATS message size limit]"

// encodeEvent marshals ev, and when the result is larger than max bytes (the
// server's max_payload less room for headers) shrinks it, so that no event
// is refused by the server and the counters stay without gaps: first the
// result data (res, diff) is replaced by a note, then stdout is cut.
func encodeEvent(ev *schemas.Event, max int) ([]byte, error) {
	b, err := json.Marshal(ev)
	if err != nil || max <= 0 || len(b) <= max {
		return b, err
	}
	var data map[string]json.RawMessage
	if json.Unmarshal(ev.EventData, &data) == nil {
		for _, k := range []string{"res", "diff"} {
			if _, ok := data[k]; ok {
				data[k] = json.RawMessage(fmt.Sprintf(`{"ansible_worker_truncated":"%s was %d bytes, over the message size limit"}`, k, len(data[k])))
			}
		}
		if small, err := json.Marshal(data); err == nil {
			c := *ev
			c.EventData = small
			ev = &c
		}
	}
	if b, err = json.Marshal(ev); err != nil || len(b) <= max {
		return b, err
	}
	c := *ev
	over := len(b) - max + len(truncatedMark) + 64
	if over < len(c.Stdout) {
		c.Stdout = c.Stdout[:len(c.Stdout)-over] + truncatedMark
	} else {
		c.Stdout = truncatedMark
	}
	if b, err = json.Marshal(&c); err != nil || len(b) <= max {
		return b, err
	}
	// Only the envelope is left (a huge event_data without res): keep the
	// counter and the event name.
	c.EventData = json.RawMessage(`{"ansible_worker_truncated":"event_data over the message size limit"}`)
	return json.Marshal(&c)
}
