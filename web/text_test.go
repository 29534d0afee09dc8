package web

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Output shows as plain text: colours, cursor moves, titles and stray
// control characters go, lines and tabs stay.
func TestPlainText(t *testing.T) {
	for in, want := range map[string]string{
		"plain\n\tline":                            "plain\n\tline",
		"\x1b[0;32mok: [localhost]\x1b[0m":         "ok: [localhost]",
		"\x1b[1;31mfatal\x1b[0m\r\n":               "fatal\n",
		"\x1b]0;title\x07after":                    "after",
		"\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\": "link",
		"bell\x07 and \x1b7saved\x1b8":             "bell and saved",
		"cut \x1b[":                                "cut ",
		"end\x1b":                                  "end",
		"caf\u00e9 \u2714":                         "caf\u00e9 \u2714",
	} {
		require.Equal(t, want, plainText(in), "%q", in)
	}
}
