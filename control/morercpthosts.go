package control

import (
	"bufio"
	"fmt"
	"github.com/goqmail/goqmail/internal/ascii"
	"os"
	"path/filepath"

	"github.com/goqmail/goqmail/control/cdb"
)

// NewMRH is qmail-newmrh: it compiles home/control/morercpthosts into
// home/control/morercpthosts.cdb, one key per line with empty data. Each
// line is lowercased and loses trailing spaces, tabs and newline; empty
// lines and lines starting with '#' are skipped. The cdb is replaced
// atomically (through morercpthosts.tmp, synced, renamed) and left
// untouched on any error.
func NewMRH(home string) error {
	dir := filepath.Join(home, "control")
	in, err := os.Open(filepath.Join(dir, "morercpthosts"))
	if err != nil {
		return fmt.Errorf("unable to read control/morercpthosts: %w", err)
	}
	defer in.Close()
	// qmail-newmrh's temporary file is morercpthosts.tmp, not .cdb.tmp.
	return cdb.WriteFileVia(filepath.Join(dir, "morercpthosts.cdb"), filepath.Join(dir, "morercpthosts.tmp"), func(w *cdb.Writer) error {
		br := bufio.NewReader(in)
		for {
			line, err := readLine(br)
			if err != nil {
				return fmt.Errorf("unable to read control/morercpthosts: %w", err)
			}
			if line == "" {
				return nil
			}
			host := stripTrailing(ascii.Lower(line))
			if host == "" || host[0] == '#' {
				continue
			}
			if err := w.Add([]byte(host), nil); err != nil {
				return fmt.Errorf("unable to write to control/morercpthosts.tmp: %w", err)
			}
		}
	})
}
