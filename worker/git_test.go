package worker

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Only the repository's own configuration files are checked: those of the
// local and worktree scopes, included ones too, relative to the checkout.
func TestRepoConfigFiles(t *testing.T) {
	t.Parallel()
	list := "system\x00file:/etc/gitconfig\x00core.x\nsystem\x00" +
		"global\x00file:/home/u/.gitconfig\x00user.name\nu\x00" +
		"local\x00file:.git/config\x00core.bare\nfalse\x00" +
		"local\x00file:.git/config\x00include.path\n/srv/inc\x00" +
		"local\x00file:/srv/inc\x00x.flag\x00" +
		"worktree\x00file:.git/config.worktree\x00core.sparsecheckout\ntrue\x00" +
		"command\x00command line:\x00core.hookspath\n/dev/null\x00"
	require.Equal(t, []string{"/play/.git/config", "/play/.git/config", "/srv/inc", "/play/.git/config.worktree"},
		repoConfigFiles("/play", list))
}
