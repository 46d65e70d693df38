package builder

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/buildkit/client/llb"

	"github.com/ispec-dev/ispec/spec"
)

// DefaultUser is the user an image runs as when neither the spec nor the
// base image names a non-root one, as flytekit's builder names it.
const DefaultUser = "flytekit"

// firstID is the first uid and gid a created user may get, as useradd's
// UID_MIN and GID_MIN.
const firstID = 1000

// ErrAccountsUnknown is returned by Graph when a user must be created and
// Input.Accounts was not read from the base image.
var ErrAccountsUnknown = errors.New("the base image's users were not read")

// Accounts is what the base image's filesystem says about its users: its
// /etc/passwd and /etc/group (nil when absent) and which of AccountPaths
// exist. The zero value is unknown: the files were not read.
type Accounts struct {
	passwd, group []byte
	present       []string
	known         bool
}

// AccountPaths are the paths whose presence in the base image the user
// step depends on: the login shell it gives a created user, and the
// folders it gives the user.
func AccountPaths() []string { return []string{"/bin/bash", "/root", "/home"} }

// KnownAccounts returns the Accounts of a base image whose /etc/passwd and
// /etc/group hold passwd and group (nil: no such file) and which has the
// paths in present (of AccountPaths).
func KnownAccounts(passwd, group []byte, present ...string) Accounts {
	return Accounts{passwd: passwd, group: group, present: present, known: true}
}

// Known reports whether the accounts were read.
func (a Accounts) Known() bool { return a.known }

func (a Accounts) has(p string) bool { return slices.Contains(a.present, p) }

// account is one line of /etc/passwd or /etc/group.
type account struct {
	name    string
	id, gid int // gid: passwd only
	home    string
}

// parseAccounts reads passwd- or group-formatted lines; lines that do not
// parse are skipped, as libc skips them.
func parseAccounts(dt []byte, passwd bool) []account {
	var out []account
	sc := bufio.NewScanner(bytes.NewReader(dt))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 3 || f[0] == "" {
			continue
		}
		id, err := strconv.Atoi(f[2])
		if err != nil {
			continue
		}
		a := account{name: f[0], id: id}
		if passwd {
			if len(f) < 6 {
				continue
			}
			if a.gid, err = strconv.Atoi(f[3]); err != nil {
				continue
			}
			a.home = f[5]
		}
		out = append(out, a)
	}
	return out
}

// runAs is who the image runs as and how the build gets there.
type runAs struct {
	// root: the image runs as root; no user step, copies owned by root.
	root bool
	// config is the image config's User; "" keeps the base's.
	config string
	// chown is the owner of copied files, and of /root and /home when
	// own is set.
	chown *llb.ChownOpt
	// own: /root and /home are given to the user.
	own bool
	// create: the user is added to /etc/passwd and /etc/group (the new
	// contents) and its home made.
	create        bool
	passwd, group []byte
	// hasRoot and hasHome: the base has /root and /home.
	hasRoot, hasHome bool
	uid, gid         int
	name, home       string
}

// isRootUser reports whether a config User or spec user value means root.
func isRootUser(u string) bool {
	name, _, _ := strings.Cut(u, ":")
	return name == "" || name == "root" || name == "0"
}

// planUser decides who the image runs as (see spec.Spec.User):
//
//   - a spec user of root or 0 runs as root (the base's config User when it
//     is root, else 0);
//   - no spec user and a base that runs as a non-root user keep the base's
//     user, which owns the copied files;
//   - otherwise the named user (DefaultUser when none is named): one the
//     base has is used with its uid, gid and home; one it lacks is created
//     with the first uid from 1000 up that the base's /etc/passwd does not
//     use, a group of its name (the first free gid from 1000 up, the uid's
//     own number when free), the home /home/NAME and the login shell
//     /bin/bash (/bin/sh when the base has no bash);
//   - uid[:gid] runs as those ids (the gid defaults to the uid's group in
//     the base's /etc/passwd, else to the uid) and creates no user.
//
// A non-root user owns /root, /home and the copied files, and the config's
// User is its numeric uid:gid, which the kubelet can check against
// runAsNonRoot. Unknown accounts are taken as a base with no users.
func planUser(s *spec.Spec, baseUser string, acc Accounts) runAs {
	u := s.User
	if u == "" {
		if !isRootUser(baseUser) {
			return keepBaseUser(baseUser, acc)
		}
		u = DefaultUser
	}
	if isRootUser(u) {
		r := runAs{root: true}
		if !isRootUser(baseUser) {
			r.config = "0"
		}
		return r
	}
	users := parseAccounts(acc.passwd, true)
	if c := u[0]; c >= '0' && c <= '9' {
		us, gs, hasGID := strings.Cut(u, ":")
		uid, _ := strconv.Atoi(us)
		gid := uid
		if hasGID {
			gid, _ = strconv.Atoi(gs)
		} else if a, ok := findID(users, uid); ok {
			gid = a.gid
		}
		return ownedBy(runAs{uid: uid, gid: gid}, acc)
	}
	if a, ok := findName(users, u); ok {
		return ownedBy(runAs{uid: a.id, gid: a.gid, name: u, home: a.home}, acc)
	}
	groups := parseAccounts(acc.group, false)
	uid := freeID(users, firstID)
	r := runAs{create: true, uid: uid, name: u, home: "/home/" + u}
	groupLine := ""
	if g, ok := findName(groups, u); ok {
		r.gid = g.id
	} else {
		r.gid = uid
		if _, taken := findID(groups, uid); taken {
			r.gid = freeID(groups, firstID)
		}
		groupLine = fmt.Sprintf("%s:x:%d:\n", u, r.gid)
	}
	shell := "/bin/sh"
	if acc.has("/bin/bash") {
		shell = "/bin/bash"
	}
	r.passwd = appendLine(acc.passwd, fmt.Sprintf("%s:x:%d:%d::%s:%s\n", u, r.uid, r.gid, r.home, shell))
	r.group = appendLine(acc.group, groupLine)
	return ownedBy(r, acc)
}

// keepBaseUser runs as the base's user; copied files are owned by it, by
// number when the base's /etc/passwd names it.
func keepBaseUser(baseUser string, acc Accounts) runAs {
	name, group, _ := strings.Cut(baseUser, ":")
	r := runAs{}
	if uid, err := strconv.Atoi(name); err == nil {
		r.chown = &llb.ChownOpt{User: &llb.UserOpt{UID: uid}}
	} else if a, ok := findName(parseAccounts(acc.passwd, true), name); ok {
		r.chown = &llb.ChownOpt{User: &llb.UserOpt{UID: a.id}, Group: &llb.UserOpt{UID: a.gid}}
	} else {
		r.chown = &llb.ChownOpt{User: &llb.UserOpt{Name: name}}
	}
	if group != "" {
		if gid, err := strconv.Atoi(group); err == nil {
			r.chown.Group = &llb.UserOpt{UID: gid}
		} else {
			r.chown.Group = &llb.UserOpt{Name: group}
		}
	}
	return r
}

// ownedBy sets the config User, and the owner of /root, /home and the
// copied files, to r's uid and gid.
func ownedBy(r runAs, acc Accounts) runAs {
	r.hasRoot, r.hasHome = acc.has("/root"), acc.has("/home")
	r.config = strconv.Itoa(r.uid) + ":" + strconv.Itoa(r.gid)
	r.chown = &llb.ChownOpt{User: &llb.UserOpt{UID: r.uid}, Group: &llb.UserOpt{UID: r.gid}}
	r.own = true
	return r
}

func findName(as []account, name string) (account, bool) {
	for _, a := range as {
		if a.name == name {
			return a, true
		}
	}
	return account{}, false
}

func findID(as []account, id int) (account, bool) {
	for _, a := range as {
		if a.id == id {
			return a, true
		}
	}
	return account{}, false
}

// freeID is the first id from start up that no account uses.
func freeID(as []account, start int) int {
	for id := start; ; id++ {
		if _, taken := findID(as, id); !taken {
			return id
		}
	}
}

// appendLine appends line to a file's content, after a newline when the
// content lacks a final one.
func appendLine(dt []byte, line string) []byte {
	out := append([]byte{}, dt...)
	if line == "" {
		return out
	}
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return append(out, line...)
}

// rootChown is the owner of copied files in an image that runs as root.
func rootChown() *llb.ChownOpt {
	return &llb.ChownOpt{User: &llb.UserOpt{UID: 0}, Group: &llb.UserOpt{UID: 0}}
}

// userStep gives the image its user in one file operation, so that it
// needs no useradd, shell or chown in the base: a created user's lines are
// added to /etc/passwd and /etc/group; /root and /home are copied onto
// themselves owned by the user, as chown -R gives them (made, owned by it,
// when the base lacks them); a created user's home is made in /home, and
// the working directory wd, owned by the user, when the base lacks it.
func userStep(r runAs, wd string) Step {
	name := fmt.Sprintf("[ispec] user %d:%d owns /root and /home", r.uid, r.gid)
	if r.create {
		name = fmt.Sprintf("[ispec] user %s (%d:%d) with home %s, owns /root and /home", r.name, r.uid, r.gid, r.home)
	}
	return Step{Name: name, place: underAll, Apply: func(st llb.State) llb.State {
		owner := llb.WithUIDGID(r.uid, r.gid)
		own := func(fa *llb.FileAction, dir string, mode int, exists bool) *llb.FileAction {
			if !exists {
				return fa.Mkdir(dir, os.FileMode(mode), llb.WithParents(true), owner, llb.WithCreatedTime(*epoch()))
			}
			return fa.Rm(dir).Copy(st, dir, dir, &llb.CopyInfo{ChownOpt: r.chown, CreateDestPath: true})
		}
		var fa *llb.FileAction // a nil action starts a chain
		if r.create {
			fa = fa.Mkdir("/etc", 0o755, llb.WithParents(true), llb.WithCreatedTime(*epoch())).Mkfile("/etc/passwd", 0o644, r.passwd, llb.WithCreatedTime(*epoch())).
				Mkfile("/etc/group", 0o644, r.group, llb.WithCreatedTime(*epoch()))
		}
		fa = own(own(fa, "/root", 0o700, r.hasRoot), "/home", 0o755, r.hasHome)
		if r.create {
			fa = fa.Mkdir(r.home, 0o755, llb.WithParents(true), owner, llb.WithCreatedTime(*epoch()))
		}
		// The working directory, when the base lacks it, is the user's
		// too, so that every later step (a command, a copy on the base
		// alone) finds it as the image has it.
		fa = fa.Mkdir(wd, 0o755, llb.WithParents(true), owner, llb.WithCreatedTime(*epoch()))
		return st.File(fa, llb.WithCustomName(name))
	}}
}

// userName is the user a spec names, or DefaultUser.
func userName(s *spec.Spec) string {
	if s.User == "" {
		return DefaultUser
	}
	return s.User
}
