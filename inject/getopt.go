package inject

import (
	"io"

	"github.com/goqmail/goqmail/internal/getopt"
)

// newGetopt parses a whole argv (argv[0] names the program in messages)
// with qmail's sgetopt rules.
func newGetopt(argv []string, opts string, stderr io.Writer) *getopt.Parser {
	argv0 := ""
	if len(argv) > 0 {
		argv0, argv = argv[0], argv[1:]
	}
	return getopt.New(argv0, argv, opts, stderr)
}
