// Command mkdeb builds goqmail's Debian package with nfpm, so that no
// Debian build tool is needed on the machine that builds it:
//
//	go run . -bin ../bin -man ../docs/man -doc ../docs -version 0.1.0 -o goqmail.deb
//
// nfpm.yaml beside this file describes the package (metadata, conffiles,
// maintainer scripts); mkdeb adds every program of -bin under
// /var/qmail/bin with qmail's modes, the service definitions (rendered by
// the services package, as qmailctl services install writes them), the
// man pages and the docs.
package main

import (
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"github.com/goqmail/goqmail/admin"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"

	"github.com/goqmail/goqmail/services"
)

// options say what package buildDeb writes.
type options struct {
	Config  string // nfpm.yaml; its relative sources are taken from its directory
	Bin     string // the built programs, e.g. ../bin
	Man     string // man pages NAME.SECTION (optional)
	Doc     string // Markdown documentation (optional)
	Version string // Debian version, e.g. 0.1.0
	Arch    string // Go architecture name (nfpm maps it to Debian's)
	Out     string // the .deb to write, or a directory for it
}

// Home is where the package installs qmail, as netqmail's conf-qmail.
const Home = "/var/qmail"

// requiredPrograms must be in -bin: without them the package would
// install a system that cannot queue or deliver mail, or whose postinst
// cannot create the queue.
var requiredPrograms = []string{"qmailctl", "qmail-queue", "qmail-inject", "sendmail", "qmail-start", "qmail-send"}

func main() {
	var opt options
	flag.StringVar(&opt.Config, "config", "nfpm.yaml", "nfpm configuration")
	flag.StringVar(&opt.Bin, "bin", "../bin", "directory of built goqmail programs")
	flag.StringVar(&opt.Man, "man", "../docs/man", "directory of man pages (NAME.SECTION); empty: none")
	flag.StringVar(&opt.Doc, "doc", "../docs", "directory of Markdown documentation; empty: none")
	flag.StringVar(&opt.Version, "version", "0.1.0", "package version")
	flag.StringVar(&opt.Arch, "arch", runtime.GOARCH, "architecture, as GOARCH")
	flag.StringVar(&opt.Out, "o", "", "output file, or directory for goqmail_VERSION_ARCH.deb (default: .)")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: mkdeb [flags]")
		os.Exit(100)
	}
	out, err := buildDeb(opt)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mkdeb: %v\n", err)
		os.Exit(111)
	}
	fmt.Println(out)
}

// buildDeb writes the package and returns its file name.
func buildDeb(opt options) (string, error) {
	if opt.Version == "" || strings.ContainsAny(opt.Version[:1], "-_.~+") {
		return "", fmt.Errorf("bad version %q: a Debian version starts with a digit", opt.Version)
	}
	env := map[string]string{"VERSION": opt.Version, "ARCH": opt.Arch}
	cfg, err := nfpm.ParseFileWithEnvMapping(opt.Config, func(k string) string { return env[k] })
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", opt.Config, err)
	}
	info, err := cfg.Get("deb")
	if err != nil {
		return "", fmt.Errorf("%s: %w", opt.Config, err)
	}
	info = nfpm.WithDefaults(info)
	base := filepath.Dir(opt.Config)
	for _, c := range info.Contents {
		if c.Type != files.TypeSymlink && c.Source != "" && !filepath.IsAbs(c.Source) {
			c.Source = filepath.Join(base, c.Source)
		}
	}
	for _, s := range []*string{&info.Scripts.PostInstall, &info.Scripts.PreRemove, &info.Scripts.PostRemove} {
		if *s != "" && !filepath.IsAbs(*s) {
			*s = filepath.Join(base, *s)
		}
	}

	programs, err := programContents(opt.Bin)
	if err != nil {
		return "", err
	}
	info.Contents = append(info.Contents, programs...)

	tmp, err := os.MkdirTemp("", "mkdeb-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	svc, err := serviceContents(tmp)
	if err != nil {
		return "", err
	}
	info.Contents = append(info.Contents, svc...)
	if opt.Man != "" {
		pages, err := manContents(opt.Man, tmp)
		if err != nil {
			return "", err
		}
		info.Contents = append(info.Contents, pages...)
	}
	if opt.Doc != "" {
		docs, err := docContents(opt.Doc)
		if err != nil {
			return "", err
		}
		info.Contents = append(info.Contents, docs...)
	}

	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return "", fmt.Errorf("preparing contents: %w", err)
	}
	packager, err := nfpm.Get("deb")
	if err != nil {
		return "", err
	}
	out := opt.Out
	if st, err := os.Stat(out); out == "" || err == nil && st.IsDir() {
		out = filepath.Join(out, packager.ConventionalFileName(info))
	}
	info.Target = out
	// Write beside the target and rename, so an interrupted build never
	// leaves a truncated package under the final name.
	f, err := os.CreateTemp(filepath.Dir(out), ".mkdeb-*.deb")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	if err := packager.Package(info, f); err != nil {
		f.Close()
		return "", fmt.Errorf("writing the package: %w", err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(f.Name(), out); err != nil {
		return "", err
	}
	return out, nil
}

// programContents lists every program of bin under /var/qmail/bin, owned
// by root with hier.c's mode.
func programContents(bin string) (files.Contents, error) {
	entries, err := os.ReadDir(bin)
	if err != nil {
		return nil, fmt.Errorf("programs: %w", err)
	}
	have := map[string]bool{}
	var contents files.Contents
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		src := filepath.Join(bin, name)
		st, err := os.Stat(src) // follows links: bin/ may hold symbolic links
		if err != nil {
			return nil, fmt.Errorf("programs: %w", err)
		}
		if !st.Mode().IsRegular() || st.Mode().Perm()&0o100 == 0 {
			continue
		}
		// Owned by root in the package: qmail-queue gets owner qmailq and
		// its setuid bit from the dpkg-statoverride postinst registers
		// once the user exists.
		mode := admin.BinMode(name).Perm()
		have[name] = true
		contents = append(contents, &files.Content{
			Source:      src,
			Destination: Home + "/bin/" + name,
			FileInfo:    &files.ContentFileInfo{Owner: "root", Group: "root", Mode: mode},
		})
	}
	var missing []string
	for _, name := range requiredPrograms {
		if !have[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("programs: %s lacks %s (run make first)", bin, strings.Join(missing, ", "))
	}
	return contents, nil
}

// serviceTargets are the service definitions the package ships: runit's
// service directories in /etc/sv (Debian's runit convention), daemontools'
// in /var/qmail/supervise (Life with qmail's), both conffiles, and systemd
// units. postinst enables the set whose supervisor is present.
var serviceTargets = []struct {
	supervisor, dir string
	conffile        bool
}{
	{services.Runit, "/etc/sv", true},
	{services.Daemontools, Home + "/supervise", true},
	{services.Systemd, "/lib/systemd/system", false},
}

// serviceContents renders qmail-send and qmail-smtpd (qmail-smtpd's own
// listener on port 25, IPv4 and IPv6) for every supervisor into tmp.
func serviceContents(tmp string) (files.Contents, error) {
	var contents files.Contents
	for _, target := range serviceTargets {
		o := services.Defaults()
		o.Home, o.Dir, o.Supervisor = Home, target.dir, target.supervisor
		o.SMTPMode = services.ModeStandalone
		rendered, err := services.Render(o)
		if err != nil {
			return nil, fmt.Errorf("services for %s: %w", target.supervisor, err)
		}
		names := make([]string, 0, len(rendered))
		for rel := range rendered {
			names = append(names, rel)
		}
		sort.Strings(names)
		for _, rel := range names {
			src := filepath.Join(tmp, target.supervisor, rel)
			if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
				return nil, err
			}
			if err := os.WriteFile(src, rendered[rel], 0o644); err != nil {
				return nil, err
			}
			mode := os.FileMode(0o755) // run scripts
			if target.supervisor == services.Systemd {
				mode = 0o644
			}
			c := &files.Content{
				Source:      src,
				Destination: target.dir + "/" + filepath.ToSlash(rel),
				FileInfo:    &files.ContentFileInfo{Owner: "root", Group: "root", Mode: mode},
			}
			if target.conffile {
				c.Type = files.TypeConfigNoReplace
			}
			contents = append(contents, c)
		}
	}
	return contents, nil
}

// manContents gzips every man page NAME.SECTION of dir into tmp and lists
// it under /usr/share/man/manSECTION, as Debian installs man pages.
func manContents(dir, tmp string) (files.Contents, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("man pages: %w", err)
	}
	var contents files.Contents
	for _, e := range entries {
		name := e.Name()
		ext := filepath.Ext(name)
		if !e.Type().IsRegular() || len(ext) != 2 || ext[1] < '1' || ext[1] > '8' {
			continue
		}
		gz := filepath.Join(tmp, name+".gz")
		if err := gzipFile(filepath.Join(dir, name), gz); err != nil {
			return nil, fmt.Errorf("man pages: %w", err)
		}
		contents = append(contents, &files.Content{
			Source:      gz,
			Destination: "/usr/share/man/man" + ext[1:] + "/" + name + ".gz",
			FileInfo:    &files.ContentFileInfo{Owner: "root", Group: "root", Mode: 0o644},
		})
	}
	if len(contents) == 0 {
		return nil, fmt.Errorf("man pages: none in %s", dir)
	}
	return contents, nil
}

// docContents lists the Markdown pages of dir under /usr/share/doc/goqmail.
func docContents(dir string) (files.Contents, error) {
	pages, err := filepath.Glob(filepath.Join(dir, "*.md"))
	if err != nil {
		return nil, err
	}
	sort.Strings(pages)
	var contents files.Contents
	for _, p := range pages {
		contents = append(contents, &files.Content{
			Source:      p,
			Destination: "/usr/share/doc/goqmail/" + filepath.Base(p),
			FileInfo:    &files.ContentFileInfo{Owner: "root", Group: "root", Mode: 0o644},
		})
	}
	return contents, nil
}

// gzipFile compresses from into to without a name or time stamp in the
// header, so the package is reproducible.
func gzipFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	zw, err := gzip.NewWriterLevel(out, gzip.BestCompression)
	if err != nil {
		out.Close()
		return err
	}
	_, err = io.Copy(zw, in)
	err = errors.Join(err, zw.Close(), out.Close())
	return err
}
