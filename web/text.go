package web

import "strings"

// plainText is s without terminal control sequences: ANSI colours and
// cursor moves (CSI), window titles (OSC), other escapes, and the control
// characters but line feed and tab. The page shows output as text; this
// keeps a coloured run readable.
func plainText(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == 0x1b:
			i = skipEscape(s, i)
		case c == '\n' || c == '\t' || !isControl(rune(c)):
			b.WriteByte(c)
		}
	}
	return b.String()
}

// isControl reports a C0 control character or DEL, but line feed and tab.
func isControl(r rune) bool {
	return (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f
}

// skipEscape returns the index of the last byte of the escape sequence
// that starts at s[i] (an ESC).
func skipEscape(s string, i int) int {
	if i+1 >= len(s) {
		return i
	}
	switch s[i+1] {
	case '[': // CSI: parameters and intermediates, then a final byte @ to ~
		for j := i + 2; j < len(s); j++ {
			if s[j] >= 0x40 && s[j] <= 0x7e {
				return j
			}
		}
		return len(s) - 1
	case ']': // OSC: until BEL or ESC \
		for j := i + 2; j < len(s); j++ {
			if s[j] == 0x07 {
				return j
			}
			if s[j] == 0x1b && j+1 < len(s) && s[j+1] == '\\' {
				return j + 1
			}
		}
		return len(s) - 1
	}
	return i + 1 // a two-byte escape
}
