package runnerstream

// Limits bound what a Reader accepts, so that a broken or hostile peer
// cannot exhaust the memory or the disk of the side that reads. A zero or
// negative field takes its default (see DefaultLimits); there is no way to
// switch a limit off, only to raise it.
//
// Limits is comparable, so a caller can test l == Limits{}.
type Limits struct {
	// MaxLine is the longest JSON line, in bytes without its newline. A
	// line is held in memory whole, and an event carrying a big module
	// result (a slurped file, a long command output) is the largest line
	// a legitimate stream has. Default 64 MiB.
	MaxLine int
	// MaxZip is the largest zip block, in bytes of zip (not of base64),
	// as announced by {"zipfile": N}. The block is spooled to a temporary
	// file, never to memory. Default 1 GiB.
	MaxZip int64
	// MaxUnzipped bounds the bytes one zip block may extract to, counted
	// as they are decompressed, not taken from the zip's headers.
	// Default 4 GiB.
	MaxUnzipped int64
	// MaxEntries is the most entries one zip block may hold. It also
	// bounds the memory the zip's central directory takes once parsed.
	// Default 100000.
	MaxEntries int
	// MaxRatio is the largest ratio of decompressed to compressed bytes
	// of one entry; it is checked only once the entry has produced more
	// than 1 MiB, so small, very compressible files (empty-ish configs,
	// runs of one character) always pass. Default 200.
	MaxRatio float64
}

// Defaults of Limits. Why these values:
//   - 64 MiB lines: ansible-runner has no limit at all; 64 MiB holds any
//     event a playbook produces in practice while bounding memory.
//   - 1 GiB zip / 4 GiB unzipped: a private data directory can carry a
//     whole project checkout (AWX ships git projects this way) or a large
//     fact cache; both fit with room, and a worker's disk is not filled by
//     one job.
//   - 100000 entries: a project with a few vendored collections has tens of
//     thousands of files; the central directory of 100000 entries parses
//     in some tens of MiB.
//   - ratio 200: deflate tops out near 1032:1; text, JSON and logs compress
//     5-50:1. A legitimate entry over 1 MiB above 200:1 is a file of one
//     repeated byte, which a private data directory has no reason to carry.
const (
	defaultMaxLine     = 64 << 20
	defaultMaxZip      = 1 << 30
	defaultMaxUnzipped = 4 << 30
	defaultMaxEntries  = 100000
	defaultMaxRatio    = 200
)

// ratioGrace is how many bytes an entry may produce before MaxRatio
// applies: below it, a high ratio cannot hurt anyone.
const ratioGrace = 1 << 20

// maxLinkTarget is the longest symlink target accepted (PATH_MAX on Linux);
// it also keeps the targets read while checking a zip small.
const maxLinkTarget = 4096

// DefaultLimits returns the limits a Reader uses for zero fields.
func DefaultLimits() Limits {
	return Limits{
		MaxLine:     defaultMaxLine,
		MaxZip:      defaultMaxZip,
		MaxUnzipped: defaultMaxUnzipped,
		MaxEntries:  defaultMaxEntries,
		MaxRatio:    defaultMaxRatio,
	}
}

// withDefaults fills the zero or negative fields of l from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxLine <= 0 {
		l.MaxLine = d.MaxLine
	}
	if l.MaxZip <= 0 {
		l.MaxZip = d.MaxZip
	}
	if l.MaxUnzipped <= 0 {
		l.MaxUnzipped = d.MaxUnzipped
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = d.MaxEntries
	}
	if !(l.MaxRatio > 0) { // also catches NaN
		l.MaxRatio = d.MaxRatio
	}
	return l
}
