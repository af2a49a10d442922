package control

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// newHome makes a qmail home whose control directory holds files.
func newHome(t *testing.T, files map[string]string) string {
	t.Helper()
	home := t.TempDir()
	dir := filepath.Join(home, "control")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return home
}

func open(t *testing.T, files map[string]string) *Files {
	t.Helper()
	f, err := Open(newHome(t, files))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestLine(t *testing.T) {
	tests := []struct {
		name    string
		content *string
		want    string
		ok      bool
	}{
		{"missing", nil, "", false},
		{"empty", ptr(""), "", true},
		{"first line only", ptr("first\nsecond\n"), "first", true},
		{"no newline", ptr("host"), "host", true},
		{"trailing space and tab", ptr("host \t \n"), "host", true},
		{"leading space kept", ptr("  host\n"), "  host", true},
		{"carriage return kept", ptr("host\r\n"), "host\r", true},
		{"empty first line", ptr("\nsecond\n"), "", true},
		{"comment is a value", ptr("# not a comment\n"), "# not a comment", true},
		{"inner space kept", ptr("a b\tc\n"), "a b\tc", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{}
			if tt.content != nil {
				files["x"] = *tt.content
			}
			got, ok, err := open(t, files).Line("x")
			if err != nil || got != tt.want || ok != tt.ok {
				t.Errorf("Line = %q, %v, %v; want %q, %v", got, ok, err, tt.want, tt.ok)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestLineErrors(t *testing.T) {
	home := newHome(t, map[string]string{"big": strings.Repeat("x", MaxLine+1)})
	if err := os.Mkdir(filepath.Join(home, "control", "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := Open(home)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"big", "dir"} {
		if _, _, err := f.Line(name); err == nil {
			t.Errorf("Line(%s) gave no error", name)
		}
		if _, _, err := f.List(name); err == nil {
			t.Errorf("List(%s) gave no error", name)
		}
	}
	// An unreadable me makes Open fail, as control_init does.
	if err := os.Mkdir(filepath.Join(home, "control", "me.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(home, "control", "me"))
	if err := os.Rename(filepath.Join(home, "control", "me.d"), filepath.Join(home, "control", "me")); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(home); err == nil {
		t.Error("Open with an unreadable me gave no error")
	}
}

func TestInt(t *testing.T) {
	tests := []struct {
		content *string
		want    int
	}{
		{nil, 7},
		{ptr("42\n"), 42},
		{ptr("42abc"), 42},
		{ptr("0"), 0},
		{ptr("abc"), 7},
		{ptr(""), 7},
		{ptr(" 42"), 7}, // scan_ulong takes no leading space
		{ptr("-5"), 7},
		{ptr("99999999999999999999999"), maxInt},
	}
	for _, tt := range tests {
		files := map[string]string{}
		if tt.content != nil {
			files["n"] = *tt.content
		}
		got, err := open(t, files).Int("n", 7)
		if err != nil || got != tt.want {
			t.Errorf("Int(%v) = %d, %v; want %d", tt.content, got, err, tt.want)
		}
	}
}

func TestParseList(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"\n\n", nil},
		{"a\nb\n", []string{"a", "b"}},
		{"a\nb", []string{"a", "b"}},
		{"# comment\na\n  # indented is not a comment\n", []string{"a", "  # indented is not a comment"}},
		{"a \t\n\t\n \nb\t", []string{"a", "b"}},
		{"a\r\n", []string{"a\r"}},
		{"x\x00y\n\x00skipped\n", []string{"x", "y"}},
		{"#\n#x\n", nil},
	}
	for _, tt := range tests {
		got, err := ParseList(strings.NewReader(tt.in))
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseList(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestDefaults(t *testing.T) {
	withMe := open(t, map[string]string{"me": "mx.example\n", "present": "value\n", "list": "a\n"})
	noMe := open(t, map[string]string{"present": "value\n"})
	tests := []struct {
		name  string
		f     *Files
		file  string
		useMe bool
		def   string
		want  string
	}{
		{"file wins", withMe, "present", true, "d", "value"},
		{"me fallback", withMe, "absent", true, "d", "mx.example"},
		{"no me fallback wanted", withMe, "absent", false, "d", "d"},
		{"literal without me", noMe, "absent", true, "d", "d"},
	}
	for _, tt := range tests {
		got, err := tt.f.LineDefault(tt.file, tt.useMe, tt.def)
		if err != nil || got != tt.want {
			t.Errorf("%s: LineDefault = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
	if me, ok := withMe.Me(); me != "mx.example" || !ok {
		t.Errorf("Me() = %q, %v", me, ok)
	}
	if _, ok := noMe.Me(); ok {
		t.Error("Me() reported a missing me as present")
	}
	if got, err := withMe.ListDefault("absent"); err != nil || !reflect.DeepEqual(got, []string{"mx.example"}) {
		t.Errorf("ListDefault(absent) = %q, %v", got, err)
	}
	if got, err := withMe.ListDefault("list"); err != nil || !reflect.DeepEqual(got, []string{"a"}) {
		t.Errorf("ListDefault(list) = %q, %v", got, err)
	}
	if got, err := noMe.ListDefault("absent"); err != nil || got != nil {
		t.Errorf("ListDefault without me = %q, %v", got, err)
	}
}

func TestSplitKeyValue(t *testing.T) {
	tests := []struct {
		line, key, value string
		ok               bool
	}{
		{"example.com:relay.example:2525", "example.com", "relay.example:2525", true},
		{":relay", "", "relay", true},
		{"nocolon", "nocolon", "", false},
	}
	for _, tt := range tests {
		k, v, ok := SplitKeyValue(tt.line)
		if k != tt.key || v != tt.value || ok != tt.ok {
			t.Errorf("SplitKeyValue(%q) = %q, %q, %v", tt.line, k, v, ok)
		}
	}
}

func TestHome(t *testing.T) {
	t.Setenv("QMAILHOME", "")
	if IsSetugid() {
		t.Skip("test binary runs setuid")
	}
	if got := Home(); got != DefaultHome {
		t.Errorf("Home() without $QMAILHOME = %q", got)
	}
	dir := t.TempDir()
	t.Setenv("QMAILHOME", dir)
	if got := Home(); got != dir {
		t.Errorf("Home() = %q, want %q", got, dir)
	}
	t.Chdir(dir)
	t.Setenv("QMAILHOME", "sub")
	if got := Home(); got != filepath.Join(dir, "sub") {
		t.Errorf("Home() with a relative $QMAILHOME = %q, want it made absolute", got)
	}
}
