package users

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/goqmail/goqmail/control/cdb"
)

func TestReadAssign(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Assignment
		errLine int // 0: no error
	}{
		{"empty file with terminator", ".\n", nil, 0},
		{"terminator without newline", ".", nil, 0},
		{"anything starting with a dot ends", "=a:u:1:2:/h:::\n.end\n=garbage\n", []Assignment{
			{Local: "a", User: "u", UID: "1", GID: "2", Home: "/h"}}, 0},
		{"simple and wildcard", "=Joe.Shmoe:joe:503:78:/home/joe:::\n+joe-:joe:507:100:/home/joe:-::\n+:alias:7790:2108:/var/qmail/alias:-::\n.\n", []Assignment{
			{Local: "Joe.Shmoe", User: "joe", UID: "503", GID: "78", Home: "/home/joe"},
			{Wildcard: true, Local: "joe-", User: "joe", UID: "507", GID: "100", Home: "/home/joe", Dash: "-"},
			{Wildcard: true, Local: "", User: "alias", UID: "7790", GID: "2108", Home: "/var/qmail/alias", Dash: "-"},
		}, 0},
		{"text after the sixth colon is ignored", "=a:u:1:2:/h:-:ext:more:stuff\n.\n", []Assignment{
			{Local: "a", User: "u", UID: "1", GID: "2", Home: "/h", Dash: "-", Ext: "ext"}}, 0},
		{"any other first character is simple", "xbob:bob:1:2:/h:::\n.\n", []Assignment{
			{Local: "bob", User: "bob", UID: "1", GID: "2", Home: "/h"}}, 0},
		{"missing terminator", "=a:u:1:2:/h:::\n", nil, 2},
		{"last line without newline", "=a:u:1:2:/h:::", nil, 1},
		{"empty file", "", nil, 1},
		{"blank line", "\n.\n", nil, 1},
		{"no colon", "=abc\n.\n", nil, 1},
		{"starts with colon", ":a:u:1:2:/h:::\n.\n", nil, 1},
		{"five colons", "=a:u:1:2:/h::\n.\n", nil, 1},
		{"NUL", "=a:u:1:2:/h\x00:::\n.\n", nil, 1},
		{"error on a later line", "=a:u:1:2:/h:::\n=b\n.\n", nil, 2},
		{"overlong line", "=" + strings.Repeat("x", maxAssignLine+10) + ":u:1:2:/h:::\n.\n", nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAssign(strings.NewReader(tt.in))
			if tt.errLine != 0 {
				var fe *FormatError
				if !errors.As(err, &fe) || fe.Line != tt.errLine {
					t.Fatalf("error = %v, want a format error on line %d", err, tt.errLine)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d assignments %+v, want %d", len(got), got, len(tt.want))
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("assignment %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestKeyValue(t *testing.T) {
	tests := []struct {
		line       string
		key, value string
	}{
		{"=Joe.Shmoe:joe:503:78:/home/joe:::", "!joe.shmoe\x00", "joe\x00503\x0078\x00/home/joe\x00\x00"},
		{"+Joe-:joe:507:100:/home/joe:-:pre:", "!joe-", "joe\x00507\x00100\x00/home/joe\x00-\x00pre"},
		{"+:alias:7790:2108:/var/qmail/alias:-::", "!", "alias\x007790\x002108\x00/var/qmail/alias\x00-\x00"},
	}
	for _, tt := range tests {
		a, reason := parseAssignLine([]byte(tt.line))
		if reason != "" {
			t.Fatalf("%q: %s", tt.line, reason)
		}
		if string(a.Key()) != tt.key || string(a.Value()) != tt.value {
			t.Errorf("%q: key %q value %q, want %q %q", tt.line, a.Key(), a.Value(), tt.key, tt.value)
		}
		if a.String() != tt.line {
			t.Errorf("String() = %q, want %q", a.String(), tt.line)
		}
	}
}

// buildCDB writes users/assign content into a home and runs NewU.
func buildCDB(t *testing.T, assign string) string {
	t.Helper()
	home := t.TempDir()
	if err := os.Mkdir(filepath.Join(home, "users"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "users", "assign"), []byte(assign), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := NewU(home); err != nil {
		t.Fatal(err)
	}
	return home
}

const exampleAssign = `+:alias:7790:2108:/var/qmail/alias:-::
+joe-:joe:507:100:/home/joe:-::
=joe:joe:507:100:/home/joe:::
+List-:list:600:600:/home/list:-:x-:
+Lists:lists:601:601:/home/lists:-::
=Joe:shadowed:1:1:/nowhere:::
.
`

func TestNewUWildchars(t *testing.T) {
	home := buildCDB(t, exampleAssign)
	db, err := cdb.Open(filepath.Join(home, "users", "cdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// "+:" adds no character (empty prefix); "-" appears once; the
	// last character keeps its case, as qmail-newu writes it.
	v, ok, err := db.Get(nil)
	if err != nil || !ok || string(v) != "-s" {
		t.Errorf(`wildchars = %q, %v, %v; want "-s"`, v, ok, err)
	}
	var keys []string
	if err := db.ForEach(func(k, v []byte) bool { keys = append(keys, string(k)); return true }); err != nil {
		t.Fatal(err)
	}
	want := []string{"!", "!joe-", "!joe\x00", "!list-", "!lists", "!joe\x00", ""}
	if strings.Join(keys, "|") != strings.Join(want, "|") {
		t.Errorf("keys = %q, want %q", keys, want)
	}
}

func TestLookup(t *testing.T) {
	home := buildCDB(t, exampleAssign)
	alias := Entry{"alias", 7790, 2108, "/var/qmail/alias", "-", ""}
	tests := []struct {
		local string
		want  Entry
		ok    bool
	}{
		{"joe", Entry{"joe", 507, 100, "/home/joe", "", ""}, true},
		{"JOE", Entry{"joe", 507, 100, "/home/joe", "", ""}, true}, // first of the duplicates
		{"joe-direct", Entry{"joe", 507, 100, "/home/joe", "-", "direct"}, true},
		{"Joe-Direct", Entry{"joe", 507, 100, "/home/joe", "-", "Direct"}, true}, // ext keeps its case
		{"joe-", Entry{"joe", 507, 100, "/home/joe", "-", ""}, true},
		{"bill", withExt(alias, "bill"), true},
		{"Bill", withExt(alias, "Bill"), true},
		{"list-Owner", Entry{"list", 600, 600, "/home/list", "-", "x-Owner"}, true},
		{"lists", Entry{"lists", 601, 601, "/home/lists", "-", ""}, true},
		{"listsX", Entry{"lists", 601, 601, "/home/lists", "-", "X"}, true},
		{"", withExt(alias, ""), true},
		{"joe\x00evil", Entry{"joe", 507, 100, "/home/joe", "", ""}, true},
	}
	db, err := cdb.Open(filepath.Join(home, "users", "cdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tt := range tests {
		got, ok, err := Lookup(db, tt.local)
		if err != nil || ok != tt.ok || got != tt.want {
			t.Errorf("Lookup(%q) = %+v, %v, %v; want %+v, %v", tt.local, got, ok, err, tt.want, tt.ok)
		}
	}
}

func withExt(e Entry, ext string) Entry { e.Ext = ext; return e }

// Without "+:" nothing matches unknown names, and a prefix whose last
// character is not a wildcard character is never tried.
func TestLookupNoCatchAll(t *testing.T) {
	// qmail-newu records the wildcard character as written ("B") and
	// qmail-lspawn compares the lowercased local part with it, so an
	// uppercase wildcard prefix never matches: kept for compatibility.
	home := buildCDB(t, "+ab:u:1:1:/h:-::\n+ab-:v:2:2:/h2:-::\n+CD:w:3:3:/h3:-::\n=EF:x:4:4:/h4:::\n.\n")
	tests := []struct {
		local string
		user  string
		ok    bool
	}{
		{"abc", "u", true},
		{"ab", "u", true},
		{"ab-c", "v", true},
		{"a", "", false},
		{"zzz", "", false},
		{"cd", "", false},
		{"cdx", "", false},
		{"ef", "x", true},
		{"eF", "x", true},
	}
	for _, tt := range tests {
		e, ok, err := LookupFile(home, tt.local)
		if err != nil || ok != tt.ok || e.User != tt.user {
			t.Errorf("LookupFile(%q) = %+v, %v, %v; want user %q ok %v", tt.local, e, ok, err, tt.user, tt.ok)
		}
	}
}

func TestLookupFileErrors(t *testing.T) {
	home := t.TempDir()
	if _, ok, err := LookupFile(home, "x"); ok || err != nil {
		t.Errorf("missing users/cdb: ok %v err %v, want neither", ok, err)
	}
	if err := os.Mkdir(filepath.Join(home, "users"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(home, "users", "cdb")
	if err := cdb.WriteFile(path, func(w *cdb.Writer) error { return w.Add([]byte("!x\x00"), []byte("u\x001")) }); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LookupFile(home, "x"); !errors.Is(err, ErrNoWildcardKey) {
		t.Errorf("cdb without the empty key: %v, want ErrNoWildcardKey", err)
	}
	c := &Chain{Home: home, Accounts: fakeAccounts{}}
	if _, err := c.Resolve("x"); ExitCode(err) != ExitCDB {
		t.Errorf("Resolve with a broken cdb: exit %d (%v), want %d", ExitCode(err), err, ExitCDB)
	}
	if err := cdb.WriteFile(path, func(w *cdb.Writer) error {
		w.Add([]byte("!x\x00"), []byte("u\x001"))
		return w.Add(nil, nil)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Resolve("x"); ExitCode(err) != ExitUsage || !errors.Is(err, ErrBadRecord) {
		t.Errorf("Resolve with a short record: exit %d (%v), want %d", ExitCode(err), err, ExitUsage)
	}
	if err := os.WriteFile(path, []byte("short"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Resolve("x"); ExitCode(err) != ExitCDB {
		t.Errorf("Resolve with a truncated cdb: exit %d (%v), want %d", ExitCode(err), err, ExitCDB)
	}
}

func TestNewUFailureKeepsCDB(t *testing.T) {
	home := buildCDB(t, exampleAssign)
	path := filepath.Join(home, "users", "cdb")
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "users", "assign"), []byte("=a:b\n.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var fe *FormatError
	if err := NewU(home); !errors.As(err, &fe) {
		t.Fatalf("NewU on a bad assign: %v, want a format error", err)
	}
	after, err := os.ReadFile(path)
	if err != nil || string(after) != string(before) {
		t.Errorf("users/cdb changed after a failed NewU (%v)", err)
	}
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("users/cdb.tmp left behind: %v", err)
	}
	os.Remove(filepath.Join(home, "users", "assign"))
	if err := NewU(home); err == nil {
		t.Error("NewU without users/assign succeeded")
	}
}

// fakeAccounts is an account database in memory: users by name, and the
// owner (or stat error) of each home directory.
type fakeAccounts struct {
	users  map[string]Passwd
	owners map[string]int
	errs   map[string]error
	lookup error
}

func (f fakeAccounts) User(name string) (*Passwd, error) {
	if f.lookup != nil {
		return nil, f.lookup
	}
	pw, ok := f.users[name]
	if !ok {
		return nil, nil
	}
	return &pw, nil
}

func (f fakeAccounts) HomeOwner(dir string) (int, error) {
	if err := f.errs[dir]; err != nil {
		return 0, err
	}
	uid, ok := f.owners[dir]
	if !ok {
		return 0, &os.PathError{Op: "stat", Path: dir, Err: syscall.ENOENT}
	}
	return uid, nil
}

func TestGetPW(t *testing.T) {
	accounts := fakeAccounts{
		users: map[string]Passwd{
			"alias":                 {"alias", 7790, 2108, "/var/qmail/alias"},
			"joe":                   {"joe", 507, 100, "/home/joe"},
			"joe-list":              {"joe-list", 508, 100, "/home/joelist"},
			"root":                  {"root", 0, 0, "/root"},
			"nohome":                {"nohome", 509, 100, "/home/nohome"},
			"wrongown":              {"wrongown", 510, 100, "/home/wrongown"},
			"nfs":                   {"nfs", 511, 100, "/home/nfs"},
			"denied":                {"denied", 512, 100, "/home/denied"},
			"a23456789":             {"a23456789", 513, 100, "/home/long"},
			strings.Repeat("b", 31): {strings.Repeat("b", 31), 514, 100, "/home/b31"},
			strings.Repeat("c", 32): {strings.Repeat("c", 32), 515, 100, "/home/c32"},
		},
		owners: map[string]int{
			"/var/qmail/alias": 0, "/home/joe": 507, "/home/joelist": 508, "/root": 0,
			"/home/wrongown": 1, "/home/long": 513, "/home/b31": 514, "/home/c32": 515,
		},
		errs: map[string]error{
			"/home/nfs":    &os.PathError{Op: "stat", Path: "/home/nfs", Err: syscall.EIO},
			"/home/denied": &os.PathError{Op: "stat", Path: "/home/denied", Err: syscall.EACCES},
		},
	}
	alias := func(ext string) Entry { return Entry{"alias", 7790, 2108, "/var/qmail/alias", "-", ext} }
	joe := func(dash, ext string) Entry { return Entry{"joe", 507, 100, "/home/joe", dash, ext} }
	tests := []struct {
		local string
		want  Entry
		code  int // 0: success
	}{
		{"joe", joe("", ""), 0},
		{"JOE", joe("", ""), 0},
		{"joe-", joe("-", ""), 0},
		{"joe-x-y", joe("-", "x-y"), 0},
		{"Joe-Foo", joe("-", "Foo"), 0},
		{"joe-list", Entry{"joe-list", 508, 100, "/home/joelist", "", ""}, 0}, // longest first
		{"joe-list-x", Entry{"joe-list", 508, 100, "/home/joelist", "-", "x"}, 0},
		{"root", alias("root"), 0}, // uid 0 never
		{"nohome", alias("nohome"), 0},
		{"wrongown", alias("wrongown"), 0},
		{"denied", alias("denied"), 0}, // non-temporary stat error: skipped
		{"nfs", Entry{}, ExitNFS},
		{"nfs-x", Entry{}, ExitNFS},
		{"joebar", alias("joebar"), 0}, // only prefixes before "-"
		{"postmaster", alias("postmaster"), 0},
		{"", alias(""), 0},
		{"-joe", alias("-joe"), 0},
		{strings.Repeat("b", 31), Entry{strings.Repeat("b", 31), 514, 100, "/home/b31", "", ""}, 0},
		{strings.Repeat("c", 32), alias(strings.Repeat("c", 32)), 0}, // 32 characters is too long
		{strings.Repeat("c", 32) + "-x", alias(strings.Repeat("c", 32) + "-x"), 0},
		{strings.Repeat("b", 31) + "-" + strings.Repeat("z", 40), Entry{strings.Repeat("b", 31), 514, 100, "/home/b31", "-", strings.Repeat("z", 40)}, 0},
	}
	for _, tt := range tests {
		got, err := GetPW(accounts, tt.local, nil)
		if tt.code != 0 {
			if ExitCode(err) != tt.code {
				t.Errorf("GetPW(%q): %v (exit %d), want exit %d", tt.local, err, ExitCode(err), tt.code)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("GetPW(%q) = %+v, %v; want %+v", tt.local, got, err, tt.want)
		}
	}

	noAlias := fakeAccounts{users: map[string]Passwd{}}
	if _, err := GetPW(noAlias, "x", nil); ExitCode(err) != ExitNoAlias {
		t.Errorf("no alias user: %v (exit %d), want %d", err, ExitCode(err), ExitNoAlias)
	}
	caller := &Passwd{"me", 1000, 1000, "/q/alias"}
	if got, err := GetPW(noAlias, "Root", caller); err != nil || got != (Entry{"me", 1000, 1000, "/q/alias", "-", "Root"}) {
		t.Errorf("GetPW with an alias account = %+v, %v", got, err)
	}
	broken := fakeAccounts{lookup: syscall.ETXTBSY}
	if _, err := GetPW(broken, "x", nil); ExitCode(err) != ExitSys {
		t.Errorf("failing lookup: %v (exit %d), want %d", err, ExitCode(err), ExitSys)
	}
}

func TestChain(t *testing.T) {
	home := buildCDB(t, "=joe:joe:507:100:/home/joe:::\n.\n")
	accounts := fakeAccounts{
		users:  map[string]Passwd{"bob": {"bob", 600, 600, "/home/bob"}, "joe": {"joe", 1, 1, "/x"}},
		owners: map[string]int{"/home/bob": 600, "/x": 1},
	}
	caller := &Passwd{"me", 1000, 1000, filepath.Join(home, "alias")}
	c := &Chain{Home: home, Accounts: accounts, Alias: caller}
	tests := []struct {
		local string
		want  Entry
	}{
		{"joe", Entry{"joe", 507, 100, "/home/joe", "", ""}},                    // users/cdb wins
		{"bob-x", Entry{"bob", 600, 600, "/home/bob", "-", "x"}},                // then getpw
		{"Postmaster", Entry{"me", 1000, 1000, caller.Home, "-", "Postmaster"}}, // then alias
	}
	for _, tt := range tests {
		got, err := c.Resolve(tt.local)
		if err != nil || got != tt.want {
			t.Errorf("Resolve(%q) = %+v, %v; want %+v", tt.local, got, err, tt.want)
		}
	}
	// Without users/cdb the chain starts at getpw.
	c.Home = t.TempDir()
	if got, err := c.Resolve("joe"); err != nil || got.Home != "/x" {
		t.Errorf("Resolve(joe) without users/cdb = %+v, %v", got, err)
	}
}

func TestCallerAlias(t *testing.T) {
	pw, err := CallerAlias("/q")
	if err != nil {
		t.Fatal(err)
	}
	if pw.UID != os.Getuid() || pw.GID != os.Getgid() || pw.Home != "/q/alias" || pw.Name == "" {
		t.Errorf("CallerAlias = %+v", pw)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	e := Entry{"joe", 507, 100, "/home/joe", "-", "x"}
	got, err := ParseRecord(e.Record())
	if err != nil || got != e {
		t.Errorf("ParseRecord(Record()) = %+v, %v", got, err)
	}
	for _, bad := range []string{"", "a\x00b\x00c\x00d\x00e\x00f", "joe\x00507"} {
		if _, err := ParseRecord([]byte(bad)); !errors.Is(err, ErrBadRecord) {
			t.Errorf("ParseRecord(%q) = %v, want ErrBadRecord", bad, err)
		}
	}
}

func TestSystemAccounts(t *testing.T) {
	var a SystemAccounts
	pw, err := a.User("root")
	if err != nil || pw == nil || pw.UID != 0 {
		t.Fatalf("User(root) = %+v, %v", pw, err)
	}
	if pw, err := a.User("no-such-user-goqmail"); pw != nil || err != nil {
		t.Errorf("User(no such user) = %+v, %v; want nil, nil", pw, err)
	}
	dir := t.TempDir()
	if uid, err := a.HomeOwner(dir); err != nil || uid != os.Getuid() {
		t.Errorf("HomeOwner(temp dir) = %d, %v; want %d", uid, err, os.Getuid())
	}
	if _, err := a.HomeOwner(filepath.Join(dir, "missing")); err == nil || isTemporary(err) {
		t.Errorf("HomeOwner(missing) = %v, want a permanent error", err)
	}
}

// TestOwnAccount: an unprivileged installation delivers for its own
// account only; another system user's local part goes to the alias user.
func TestOwnAccount(t *testing.T) {
	system := fakeAccounts{
		users: map[string]Passwd{
			"me":  {Name: "me", UID: 1000, GID: 1000, Home: "/home/me"},
			"bob": {Name: "bob", UID: 1001, GID: 1001, Home: "/home/bob"},
		},
		owners: map[string]int{"/home/me": 1000, "/home/bob": 1001},
	}
	alias := &Passwd{Name: "me", UID: 1000, GID: 1000, Home: "/q/alias"}
	c := &Chain{Home: t.TempDir(), Accounts: OwnAccount{Accounts: system, UID: 1000}, Alias: alias}
	for _, tc := range []struct {
		local      string
		user, home string
		dash, ext  string
	}{
		{"me", "me", "/home/me", "", ""},
		{"me-list", "me", "/home/me", "-", "list"},
		{"bob", "me", "/q/alias", "-", "bob"},
		{"bob-x", "me", "/q/alias", "-", "bob-x"},
	} {
		e, err := c.Resolve(tc.local)
		if err != nil {
			t.Fatalf("Resolve(%q): %v", tc.local, err)
		}
		if e.User != tc.user || e.Home != tc.home || e.Dash != tc.dash || e.Ext != tc.ext {
			t.Errorf("Resolve(%q) = %+v, want user %s home %s dash %q ext %q", tc.local, e, tc.user, tc.home, tc.dash, tc.ext)
		}
	}
}

// TestChainFollowsUsersCDB: a long-running qmail-lspawn keeps users/cdb
// open, and still sees each new one qmail-newu makes, and its removal.
func TestChainFollowsUsersCDB(t *testing.T) {
	home := buildCDB(t, "=joe:joe:507:100:/home/joe:::\n.\n")
	c := &Chain{Home: home, Accounts: fakeAccounts{}, Alias: &Passwd{Name: "alias", UID: 7, GID: 7, Home: "/alias"}}
	resolve := func(local string) string {
		t.Helper()
		e, err := c.Resolve(local)
		if err != nil {
			t.Fatalf("Resolve(%q): %v", local, err)
		}
		return e.User
	}
	// Asked twice: the second answer is the remembered one.
	for i := 0; i < 2; i++ {
		if got := resolve("joe"); got != "joe" {
			t.Fatalf("joe goes to %q", got)
		}
		if got := resolve("ann"); got != "alias" {
			t.Fatalf("ann goes to %q", got)
		}
	}
	if err := os.WriteFile(filepath.Join(home, "users", "assign"), []byte("=joe:jane:508:100:/home/jane:::\n=ann:ann:509:100:/home/ann:::\n.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := NewU(home); err != nil {
		t.Fatal(err)
	}
	if got := resolve("joe"); got != "jane" {
		t.Errorf("after qmail-newu joe goes to %q, want jane", got)
	}
	if got := resolve("ann"); got != "ann" {
		t.Errorf("after qmail-newu ann goes to %q, want ann", got)
	}
	if err := os.Remove(filepath.Join(home, "users", "cdb")); err != nil {
		t.Fatal(err)
	}
	if got := resolve("joe"); got != "alias" {
		t.Errorf("without users/cdb joe goes to %q, want the alias user", got)
	}
}
