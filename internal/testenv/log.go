package testenv

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// ManifestPut is one successful manifest upload seen in a registry log.
type ManifestPut struct {
	// Repo is the repository, without the registry host, e.g. "team/app".
	Repo string
	// Reference is the tag or digest the manifest was put under.
	Reference string
}

var (
	// Access log (combined log format):
	//   127.0.0.1 - - [date] "PUT /v2/team/app/manifests/v1 HTTP/1.1" 201 0 "" "agent"
	accessPutRE = regexp.MustCompile(`"PUT /v2/(.+)/manifests/([^ ?"]+)[^"]* HTTP/[0-9.]+" 201 `)
	// Application log ("response completed" with method, uri and status fields).
	appMethodRE = regexp.MustCompile(`http\.request\.method="?PUT"?(\s|$)`)
	appURIRE    = regexp.MustCompile(`http\.request\.uri="?/v2/(.+)/manifests/([^ ?"]+)`)
	appStatusRE = regexp.MustCompile(`http\.response\.status="?201"?(\s|$)`)
)

// ManifestPuts returns the successful (201) manifest PUTs recorded in a CNCF
// distribution registry log. Such a registry logs each request twice, in its
// access log and as a "response completed" line; the form with more entries
// is returned, so either log alone suffices.
func ManifestPuts(logPath string) ([]ManifestPut, error) {
	f, err := os.Open(logPath)
	if err != nil {
		return nil, fmt.Errorf("open registry log: %w", err)
	}
	defer f.Close()
	var access, app []ManifestPut
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if m := accessPutRE.FindStringSubmatch(line); m != nil {
			access = append(access, ManifestPut{Repo: m[1], Reference: m[2]})
			continue
		}
		if strings.Contains(line, "response completed") && appMethodRE.MatchString(line) && appStatusRE.MatchString(line) {
			if m := appURIRE.FindStringSubmatch(line); m != nil {
				app = append(app, ManifestPut{Repo: m[1], Reference: m[2]})
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read registry log: %w", err)
	}
	if len(app) > len(access) {
		return app, nil
	}
	return access, nil
}

// cacheTag is the tag of the registry build cache next to an image
// (builder.CacheTag; testenv does not import builder).
const cacheTag = "ispec-cache"

// CountManifestPuts returns how many images were successfully pushed to
// repo according to the registry log at logPath: manifest PUTs, leaving out
// those of the registry build cache (tag ispec-cache) that builds export
// next to their images. repo may carry the
// registry host ("127.0.0.1:5000/team/app") or not ("team/app"). Count
// before and after an action to see how many pushes it made.
func CountManifestPuts(t testing.TB, logPath, repo string) int {
	t.Helper()
	puts, err := ManifestPuts(logPath)
	if err != nil {
		t.Fatal(err)
	}
	repo = stripRegistryHost(repo)
	n := 0
	for _, p := range puts {
		if p.Repo == repo && p.Reference != cacheTag {
			n++
		}
	}
	return n
}

// stripRegistryHost drops a leading registry host: a first path component
// holding a '.' or ':' or equal to "localhost".
func stripRegistryHost(repo string) string {
	first, rest, ok := strings.Cut(repo, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return rest
	}
	return repo
}
