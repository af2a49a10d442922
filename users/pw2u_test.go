package users

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestParsePW2UArgs(t *testing.T) {
	def := PW2UOptions{DashColon: "-:", Home: HomeSkip, Break: "-"}
	tests := []struct {
		args []string
		want PW2UOptions
		err  bool
	}{
		{nil, def, false},
		{[]string{"-/"}, PW2UOptions{DashColon: "-/:", Home: HomeSkip, Break: "-"}, false},
		{[]string{"-hu"}, PW2UOptions{DashColon: "-:", Home: HomeStop, Break: "-", AllowUpper: true}, false},
		{[]string{"-H", "-uU"}, PW2UOptions{DashColon: "-:", Home: HomeIgnore, Break: "-"}, false},
		{[]string{"-c+"}, PW2UOptions{DashColon: "-:", Home: HomeSkip, Break: "+"}, false},
		{[]string{"-c", "=x", "-o"}, PW2UOptions{DashColon: "-:", Home: HomeSkip, Break: "="}, false},
		{[]string{"-hc", "+"}, PW2UOptions{DashColon: "-:", Home: HomeStop, Break: "+"}, false},
		{[]string{"-C"}, PW2UOptions{DashColon: "-:", Home: HomeSkip, Break: ""}, false},
		{[]string{"-c", ""}, PW2UOptions{DashColon: "-:", Home: HomeSkip, Break: ""}, false},
		{[]string{"--", "-h"}, def, false},
		{[]string{"file", "-h"}, def, false},
		{[]string{"-x"}, def, true},
		{[]string{"-c"}, def, true},
	}
	for _, tt := range tests {
		got, err := ParsePW2UArgs(tt.args)
		if tt.err {
			if !errors.Is(err, ErrUsage) {
				t.Errorf("ParsePW2UArgs(%q) error = %v, want ErrUsage", tt.args, err)
			}
			continue
		}
		if err != nil || got.DashColon != tt.want.DashColon || got.Home != tt.want.Home || got.Break != tt.want.Break || got.AllowUpper != tt.want.AllowUpper {
			t.Errorf("ParsePW2UArgs(%q) = %+v, %v; want %+v", tt.args, got, err, tt.want)
		}
	}
}

const testPasswd = `root:x:0:0:root:/root:/bin/bash
alias:x:7790:2108::/var/qmail/alias:/bin/true
joe:x:507:100:Joe:/home/joe:/bin/sh
Upper:x:508:100::/home/upper:/bin/sh
nohome:x:509:100::/home/nohome:/bin/sh
notmine:x:510:100::/home/notmine:/bin/sh
short:x:511:100::/home/short
bad:x:512:100::/home/bad:/bin/sh
list:x:513:100::/home/list:/bin/sh
`

func fakeOwner(dir string) (int, error) {
	owners := map[string]int{"/var/qmail/alias": 7790, "/home/joe": 507, "/home/upper": 508,
		"/home/notmine": 1, "/home/short": 511, "/home/list": 513, "/root": 0}
	if dir == "/home/bad" {
		return 0, &os.PathError{Op: "stat", Path: dir, Err: syscall.EIO}
	}
	if uid, ok := owners[dir]; ok {
		return uid, nil
	}
	return 0, &os.PathError{Op: "stat", Path: dir, Err: syscall.ENOENT}
}

func TestPW2U(t *testing.T) {
	base := func() PW2UOptions {
		opts, _ := ParsePW2UArgs(nil)
		opts.HomeOwner = fakeOwner
		return opts
	}
	noBad := strings.Replace(testPasswd, "bad:x:512:100::/home/bad:/bin/sh\n", "", 1)
	tests := []struct {
		name   string
		passwd string
		files  map[string]string
		opts   func(*PW2UOptions)
		want   string
		err    string
	}{
		{"defaults", noBad, nil, nil,
			"+:alias:7790:2108:/var/qmail/alias:-::\n" +
				"=alias:alias:7790:2108:/var/qmail/alias:::\n+alias-:alias:7790:2108:/var/qmail/alias:-::\n" +
				"=joe:joe:507:100:/home/joe:::\n+joe-:joe:507:100:/home/joe:-::\n" +
				"=list:list:513:100:/home/list:::\n+list-:list:513:100:/home/list:-::\n.\n", ""},
		{"stat error fails", testPasswd, nil, nil, "", "unable to stat /home/bad"},
		{"-h fails on a missing home", noBad, nil, func(o *PW2UOptions) { o.Home = HomeStop }, "", "unable to stat /home/nohome"},
		{"-H -u -/ -c+", testPasswd, map[string]string{"exclude": "LIST\n", "include": "alias\njoe\nupper\nnohome\nnotmine\nbad\n"},
			func(o *PW2UOptions) { o.Home, o.AllowUpper, o.DashColon, o.Break = HomeIgnore, true, "-/:", "+" },
			"+:alias:7790:2108:/var/qmail/alias:-/::\n" +
				"=alias:alias:7790:2108:/var/qmail/alias:::\n+alias+:alias:7790:2108:/var/qmail/alias:-/::\n" +
				"=joe:joe:507:100:/home/joe:::\n+joe+:joe:507:100:/home/joe:-/::\n" +
				"=Upper:Upper:508:100:/home/upper:::\n+Upper+:Upper:508:100:/home/upper:-/::\n" +
				"=nohome:nohome:509:100:/home/nohome:::\n+nohome+:nohome:509:100:/home/nohome:-/::\n" +
				"=notmine:notmine:510:100:/home/notmine:::\n+notmine+:notmine:510:100:/home/notmine:-/::\n" +
				"=bad:bad:512:100:/home/bad:::\n+bad+:bad:512:100:/home/bad:-/::\n.\n", ""},
		{"mailnames, subusers, append, -C", noBad, map[string]string{
			"mailnames": "# comment\nJOE:Joe.Shmoe::js\nlist:\n",
			"subusers":  "help:joe:helpdesk:\nignored line\n",
			"append":    "=extra:x:1:1:/x:::\n",
		}, func(o *PW2UOptions) { o.Break = "" },
			"+:alias:7790:2108:/var/qmail/alias:-::\n" +
				"=alias:alias:7790:2108:/var/qmail/alias:::\n" +
				"=Joe.Shmoe:joe:507:100:/home/joe:::\n=js:joe:507:100:/home/joe:::\n" +
				"=help:joe:507:100:/home/joe:-:helpdesk:\n" +
				"=extra:x:1:1:/x:::\n.\n", ""},
		{"subuser with break", noBad, map[string]string{"subusers": "help:joe:hd:\n"}, nil,
			"+:alias:7790:2108:/var/qmail/alias:-::\n" +
				"=alias:alias:7790:2108:/var/qmail/alias:::\n+alias-:alias:7790:2108:/var/qmail/alias:-::\n" +
				"=joe:joe:507:100:/home/joe:::\n+joe-:joe:507:100:/home/joe:-::\n" +
				"=list:list:513:100:/home/list:::\n+list-:list:513:100:/home/list:-::\n" +
				"=help:joe:507:100:/home/joe:-:hd:\n+help-:joe:507:100:/home/joe:-:hd-:\n.\n", ""},
		{"unknown subuser owner", noBad, map[string]string{"subusers": "help:nobody:hd:\n"}, nil, "", "unable to find nobody user for subuser"},
		{"no alias", "joe:x:507:100:Joe:/home/joe:/bin/sh\n", nil, nil, "", "unable to find alias user"},
		{"last line without newline", "alias:x:7790:2108::/var/qmail/alias:/bin/true", nil, func(o *PW2UOptions) { o.Break = "" },
			"+:alias:7790:2108:/var/qmail/alias:-::\n=alias:alias:7790:2108:/var/qmail/alias:::\n.\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir()
			if err := os.Mkdir(filepath.Join(home, "users"), 0o755); err != nil {
				t.Fatal(err)
			}
			for name, content := range tt.files {
				if err := os.WriteFile(filepath.Join(home, "users", name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			opts := base()
			if tt.opts != nil {
				tt.opts(&opts)
			}
			var out bytes.Buffer
			err := PW2U(home, strings.NewReader(tt.passwd), &out, opts)
			if tt.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
					t.Fatalf("error = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.want {
				t.Errorf("output:\n%s\nwant:\n%s", out.String(), tt.want)
			}
			// Whatever qmail-pw2u writes, qmail-newu accepts.
			if _, err := ParseAssign(&out); err != nil {
				t.Errorf("output does not parse as users/assign: %v", err)
			}
		})
	}
}
