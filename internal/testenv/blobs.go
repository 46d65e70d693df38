package testenv

import (
	"bufio"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
)

var (
	appPutPostRE = regexp.MustCompile(`http\.request\.method="?(PUT|POST)"?(\s|$)`)
	appBlobURIRE = regexp.MustCompile(`http\.request\.uri="?/v2/(.+)/blobs/uploads/([^ "]*)`)
)

// BlobWrite is one blob written to a repository, as a registry log
// records it: an upload completed (PUT .../blobs/uploads/...?digest=D,
// 201) or a cross-repository mount (POST .../blobs/uploads/?mount=D, 201).
type BlobWrite struct {
	// Repo is the repository, without the registry host.
	Repo string
	// Digest is the blob's digest.
	Digest string
	// Mount tells a mount from an upload.
	Mount bool
}

// BlobWrites returns the blobs written to repo (with or without the
// registry host) according to the registry log at logPath, in the order
// the registry answered them. A registry writes a blob's link in the
// repository on each of them.
func BlobWrites(t testing.TB, logPath, repo string) []BlobWrite {
	t.Helper()
	repo = stripRegistryHost(repo)
	f, err := os.Open(logPath)
	if err != nil {
		t.Fatalf("open registry log: %v", err)
	}
	defer f.Close()
	var out []BlobWrite
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, "response completed") || !appStatusRE.MatchString(line) {
			continue
		}
		m := appPutPostRE.FindStringSubmatch(line)
		u := appBlobURIRE.FindStringSubmatch(line)
		if m == nil || u == nil || u[1] != repo {
			continue
		}
		_, rawQuery, _ := strings.Cut(u[2], "?")
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			continue
		}
		switch {
		case m[1] == "PUT" && q.Get("digest") != "":
			out = append(out, BlobWrite{Repo: repo, Digest: q.Get("digest")})
		case m[1] == "POST" && q.Get("mount") != "":
			out = append(out, BlobWrite{Repo: repo, Digest: q.Get("mount"), Mount: true})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read registry log: %v", err)
	}
	return out
}
