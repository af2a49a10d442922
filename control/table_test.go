package control

import (
	"reflect"
	"strings"
	"testing"
)

func TestTableConsistent(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Table {
		if seen[s.Name] {
			t.Errorf("%s listed twice", s.Name)
		}
		seen[s.Name] = true
		if s.Doc == "" || len(s.Readers) == 0 {
			t.Errorf("%s lacks documentation or readers", s.Name)
		}
		if s.Kind == KindInt && s.HasDefault {
			if _, ok := ScanUlong(s.Default); !ok {
				t.Errorf("%s: default %q is not a number", s.Name, s.Default)
			}
		}
		if strings.Contains(s.Kind.String(), "Kind(") {
			t.Errorf("%s: kind without a name", s.Name)
		}
	}
	// Every file of the checklist's §4.2 and §4.3.
	for _, name := range strings.Fields(`me badmailfrom bouncefrom bouncehost concurrencylocal
		concurrencyremote databytes defaultdomain defaulthost doublebouncehost doublebounceto
		envnoathost helohost idhost localiphost locals morercpthosts percenthack plusdomain
		qmqpservers queuelifetime rcpthosts smtpgreeting smtproutes timeoutconnect timeoutremote
		timeoutsmtpd virtualdomains authsenders servercert.pem clientca.pem clientcrl.pem
		tlsclients tlsserverciphers tlsclientciphers clientcert.pem dh2048.pem rsa2048.pem`) {
		if !seen[name] {
			t.Errorf("%s missing from Table", name)
		}
	}
}

func TestTableAccessors(t *testing.T) {
	withMe := open(t, map[string]string{
		"me": "mx.example\n", "bouncefrom": "bounces \n", "timeoutsmtpd": "30\n",
		"queuelifetime": "soon\n", "rcpthosts": "", "smtproutes": ":relay.example\n# c\n",
	})
	noMe := open(t, nil)

	strs := []struct {
		f    *Files
		name string
		want string
		ok   bool
	}{
		{withMe, "bouncefrom", "bounces", true},
		{noMe, "bouncefrom", "MAILER-DAEMON", true},
		{withMe, "bouncehost", "mx.example", true},
		{noMe, "bouncehost", "bouncehost", true},
		{withMe, "doublebounceto", "postmaster", true}, // no me fallback
		{noMe, "defaultdomain", "defaultdomain", true},
		{noMe, "plusdomain", "plusdomain", true},
		{noMe, "idhost", "idhost", true},
		{withMe, "helohost", "mx.example", true},
		{noMe, "helohost", "", false},
		{noMe, "smtpgreeting", "", false},
		{noMe, "localiphost", "", false},
		{withMe, "smtpgreeting", "mx.example", true},
	}
	for _, tt := range strs {
		got, ok, err := tt.f.String(tt.name)
		if err != nil || got != tt.want || ok != tt.ok {
			t.Errorf("String(%s) = %q, %v, %v; want %q, %v", tt.name, got, ok, err, tt.want, tt.ok)
		}
	}

	nums := []struct {
		f    *Files
		name string
		want int
	}{
		{noMe, "concurrencylocal", 10},
		{noMe, "concurrencyremote", 20},
		{noMe, "databytes", 0},
		{noMe, "queuelifetime", 604800},
		{withMe, "queuelifetime", 604800}, // not a number: the default
		{noMe, "timeoutconnect", 60},
		{noMe, "timeoutremote", 1200},
		{withMe, "timeoutsmtpd", 30},
		{noMe, "concurrencyincoming", 0},
	}
	for _, tt := range nums {
		got, err := tt.f.Number(tt.name)
		if err != nil || got != tt.want {
			t.Errorf("Number(%s) = %d, %v; want %d", tt.name, got, err, tt.want)
		}
	}

	lists := []struct {
		f    *Files
		name string
		want []string
		ok   bool
	}{
		{withMe, "locals", []string{"mx.example"}, true},
		{noMe, "locals", nil, false},
		{withMe, "rcpthosts", nil, true}, // empty, not missing
		{noMe, "rcpthosts", nil, false},  // missing: open relay
		{noMe, "badmailfrom", nil, false},
		{withMe, "smtproutes", []string{":relay.example"}, true},
		{noMe, "tlsserverciphers", []string{"DEFAULT"}, true},
	}
	for _, tt := range lists {
		got, ok, err := tt.f.Strings(tt.name)
		if err != nil || !reflect.DeepEqual(got, tt.want) || ok != tt.ok {
			t.Errorf("Strings(%s) = %q, %v, %v; want %q, %v", tt.name, got, ok, err, tt.want, tt.ok)
		}
	}

	// Misuse is an error, not a silent default.
	for _, bad := range []func() error{
		func() error { _, _, err := noMe.String("nosuchfile"); return err },
		func() error { _, _, err := noMe.String("databytes"); return err },
		func() error { _, err := noMe.Number("locals"); return err },
		func() error { _, _, err := noMe.Strings("me"); return err },
	} {
		if bad() == nil {
			t.Error("reading a file the wrong way gave no error")
		}
	}
}
