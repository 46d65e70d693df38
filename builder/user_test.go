package builder

import (
	"strings"
	"testing"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ispec-dev/ispec/spec"
)

// debianPasswd and debianGroup are the start of Debian's files.
const (
	debianPasswd = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
	debianGroup  = "root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n"
)

// debianAccounts are the accounts of a Debian base.
func debianAccounts() Accounts {
	return KnownAccounts([]byte(debianPasswd), []byte(debianGroup), AccountPaths()...)
}

func TestPlanUser(t *testing.T) {
	busybox := KnownAccounts([]byte("root:x:0:0:root:/root:/bin/sh"), nil, "/root")
	taken := KnownAccounts([]byte(debianPasswd+"ubuntu:x:1000:1000::/home/ubuntu:/bin/bash\n"), []byte(debianGroup+"ubuntu:x:1000:\n"), AccountPaths()...)
	has := KnownAccounts([]byte(debianPasswd+"flytekit:x:1001:1002::/home/flytekit:/bin/bash\n"), []byte(debianGroup), AccountPaths()...)
	for _, tc := range []struct {
		name, user, baseUser string
		acc                  Accounts
		config               string // "" keeps the base's
		create, root         bool
		passwdLine           string
		groupLine            string
	}{
		{name: "default on Debian", acc: debianAccounts(), config: "1000:1000", create: true,
			passwdLine: "flytekit:x:1000:1000::/home/flytekit:/bin/bash\n", groupLine: "flytekit:x:1000:\n"},
		{name: "default on busybox: sh, no group file", acc: busybox, config: "1000:1000", create: true,
			passwdLine: "root:x:0:0:root:/root:/bin/sh\nflytekit:x:1000:1000::/home/flytekit:/bin/sh\n", groupLine: "flytekit:x:1000:\n"},
		{name: "1000 taken", acc: taken, config: "1001:1001", create: true,
			passwdLine: "flytekit:x:1001:1001::/home/flytekit:/bin/bash\n", groupLine: "flytekit:x:1001:\n"},
		{name: "base has flytekit", acc: has, config: "1001:1002"},
		{name: "root", user: "root", acc: debianAccounts(), root: true},
		{name: "0", user: "0", acc: debianAccounts(), root: true},
		{name: "root over a non-root base", user: "root", baseUser: "app", root: true, config: "0"},
		{name: "base's non-root user kept", baseUser: "app", acc: debianAccounts()},
		{name: "base root by name", baseUser: "root", acc: debianAccounts(), config: "1000:1000", create: true},
		{name: "numeric", user: "4242", acc: debianAccounts(), config: "4242:4242"},
		{name: "numeric with gid", user: "4242:100", acc: debianAccounts(), config: "4242:100"},
		{name: "numeric existing", user: "1", acc: debianAccounts(), config: "1:1"},
		{name: "named over a non-root base", user: "worker", baseUser: "app", acc: debianAccounts(), config: "1000:1000", create: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := planUser(&spec.Spec{User: tc.user}, tc.baseUser, tc.acc)
			if r.config != tc.config || r.create != tc.create || r.root != tc.root {
				t.Fatalf("plan = config %q create %v root %v, want %q %v %v", r.config, r.create, r.root, tc.config, tc.create, tc.root)
			}
			if tc.create && (!strings.HasSuffix(string(r.passwd), tc.passwdLine) || !strings.HasSuffix(string(r.group), tc.groupLine)) {
				t.Errorf("passwd %q group %q, want them to end with %q and %q", r.passwd, r.group, tc.passwdLine, tc.groupLine)
			}
			if tc.create && !strings.HasPrefix(string(r.passwd), "root:x:0:0:") {
				t.Errorf("passwd %q lost the base's lines", r.passwd)
			}
		})
	}
}

// TestUserStepGraph: the default user comes first, every later step runs
// on it, copies are owned by it and /root and /home are copied onto
// themselves owned by it.
func TestUserStepGraph(t *testing.T) {
	doc := strings.Replace(fullSpec, "user: root\n", "", 1)
	img := loadSpec(t, doc, fullFiles)
	for _, linear := range []bool{true, false} {
		st, err := Graph(img, Input{Platform: amd64, Base: testBase, Accounts: debianAccounts(), Linear: linear})
		if err != nil {
			t.Fatal(err)
		}
		_, all := chain(t, st)
		var copies, owns, accounts int
		for _, o := range all {
			f := o.GetFile()
			if f == nil {
				continue
			}
			for _, a := range f.Actions {
				if mk := a.GetMkfile(); mk != nil && mk.Path == "/etc/passwd" {
					accounts++
					if !strings.HasSuffix(string(mk.Data), "flytekit:x:1000:1000::/home/flytekit:/bin/bash\n") {
						t.Errorf("passwd = %q", mk.Data)
					}
				}
				cp := a.GetCopy()
				if cp == nil {
					continue
				}
				if cp.Owner == nil || cp.Owner.User.GetByID() != 1000 || cp.Owner.Group.GetByID() != 1000 {
					t.Errorf("copy %s -> %s owner = %v, want 1000:1000", cp.Src, cp.Dest, cp.Owner)
				}
				if cp.Dest == "/root" || cp.Dest == "/home" {
					owns++
				} else {
					copies++
				}
			}
		}
		if accounts != 1 || owns != 2 || copies != 3 {
			t.Errorf("linear %v: %d passwd files, %d owned folders, %d copies; want 1, 2, 3", linear, accounts, owns, copies)
		}
	}
	steps, err := Steps(img, Input{Platform: amd64, Base: testBase, Accounts: debianAccounts()})
	if err != nil {
		t.Fatal(err)
	}
	if steps[0].place != underAll || !strings.Contains(steps[0].Name, "user flytekit (1000:1000)") {
		t.Errorf("first step %q, want the user", steps[0].Name)
	}
	cfg, err := Config(img, Input{Platform: amd64, Base: testBase, Accounts: debianAccounts()}, ConfigInput{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != "1000:1000" || cfg.Config.WorkingDir != "/app" {
		t.Errorf("config user %q workdir %q, want 1000:1000 /app", cfg.Config.User, cfg.Config.WorkingDir)
	}
}

func TestUserNeedsAccounts(t *testing.T) {
	img := loadSpec(t, "name: a\nbase_image: "+testBase+"\n", nil)
	if _, err := Graph(img, Input{Platform: amd64, Base: testBase}); err == nil || !strings.Contains(err.Error(), "users were not read") {
		t.Errorf("Graph without accounts: %v", err)
	}
	root := loadSpec(t, "name: a\nbase_image: "+testBase+"\nuser: root\n", nil)
	if _, err := Graph(root, Input{Platform: amd64, Base: testBase}); err != nil {
		t.Errorf("user: root needs no accounts: %v", err)
	}
	cfg, err := Config(root, Input{Platform: amd64, Base: testBase, BaseConfig: baseConfig(t, ocispecs.ImageConfig{User: "app"})}, ConfigInput{})
	if err != nil || cfg.Config.User != "0" {
		t.Errorf("user: root over a base running as app: config user %q (%v), want 0", cfg.Config.User, err)
	}
}
