package schemas

import (
	"fmt"
)

// MaxIDLength is the longest task id or group name accepted.
const MaxIDLength = 128

var idPattern = lazyRegexp(`^[A-Za-z0-9_-]{1,128}$`)

// ValidID reports whether s may be used as a task id or group name: 1 to 128
// characters of A-Z a-z 0-9 _ -. Such a value is safe as a NATS subject token,
// a KV key part and an MQTT topic level.
func ValidID(s string) bool { return idPattern().MatchString(s) }

// CheckID returns an error naming what (for example "task_id") when s is not a
// valid id.
func CheckID(what, s string) error {
	if s == "" {
		return fmt.Errorf("%s is empty", what)
	}
	if len(s) > MaxIDLength {
		return fmt.Errorf("%s is %d characters long, the limit is %d", what, len(s), MaxIDLength)
	}
	if !ValidID(s) {
		return fmt.Errorf("%s %q may contain only A-Z a-z 0-9 _ -", what, s)
	}
	return nil
}
