package builder

import (
	"fmt"
	"slices"
	"strings"

	"github.com/moby/buildkit/client"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
)

// Names BuildKit gives the progress vertices of its registry cache.
const (
	cacheImportVertexPrefix = "importing cache manifest from "
	cacheExportVertexName   = "exporting cache to registry"
)

// cacheImports are BuildKit's importer entries for refs, for the
// gateway's solve requests.
func cacheImports(refs []string) []gateway.CacheOptionsEntry {
	var out []gateway.CacheOptionsEntry
	for _, r := range refs {
		out = append(out, gateway.CacheOptionsEntry{Type: "registry", Attrs: map[string]string{"ref": r}})
	}
	return out
}

// cacheExports are BuildKit's exporter entries for refs: every step
// (mode=max), OCI media types with an image manifest so that registries
// that only take images accept it, and a failed export that does not fail
// the build.
func cacheExports(refs []string) []client.CacheOptionsEntry {
	var out []client.CacheOptionsEntry
	for _, r := range refs {
		out = append(out, client.CacheOptionsEntry{Type: "registry", Attrs: map[string]string{
			"ref":            r,
			"mode":           "max",
			"oci-mediatypes": "true",
			"image-manifest": "true",
			"ignore-error":   "true",
		}})
	}
	return out
}

// isCacheVertex tells the vertices of the registry cache apart from the
// build's: their errors never fail a build.
func isCacheVertex(name string) bool {
	return name == cacheExportVertexName || strings.HasPrefix(name, cacheImportVertexPrefix)
}

// cacheWarnings is at most one warning that sums up what went wrong with
// the registry cache: exports that failed, and imports that failed for
// another reason than the reference not existing yet (a first build).
func (t *tracker) cacheWarnings(imports, exports []string) []string {
	var exportErrs, importRefs, importErrs []string
	for _, d := range t.order {
		v := t.vertices[d]
		if v.err == "" {
			continue
		}
		switch {
		case v.name == cacheExportVertexName:
			exportErrs = appendNew(exportErrs, v.err)
		case strings.HasPrefix(v.name, cacheImportVertexPrefix):
			if isNotFound(v.err) {
				continue
			}
			importRefs = appendNew(importRefs, strings.TrimPrefix(v.name, cacheImportVertexPrefix))
			importErrs = appendNew(importErrs, v.err)
		}
	}
	var parts []string
	if len(exportErrs) > 0 {
		parts = append(parts, fmt.Sprintf("not written to %s: %s", strings.Join(exports, ", "), firstError(exportErrs)))
	}
	if len(importErrs) > 0 {
		parts = append(parts, fmt.Sprintf("not read from %s: %s", strings.Join(importRefs, ", "), firstError(importErrs)))
	}
	if len(parts) == 0 {
		return nil
	}
	return []string{"registry cache " + strings.Join(parts, "; ") +
		" (the image is built and pushed without it; turn the cache off with --no-registry-cache)"}
}

// firstError is the first of errs without BuildKit's wrapping, and how
// many more there were.
func firstError(errs []string) string {
	msg := errs[0]
	for _, p := range []string{"failed to configure registry cache importer: ", "error writing layer blob: ", "error writing manifest blob: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	if len(errs) > 1 {
		msg += fmt.Sprintf(" (and %d more)", len(errs)-1)
	}
	return msg
}

// isNotFound tells a cache reference that does not exist yet from one
// that could not be read.
func isNotFound(msg string) bool {
	return strings.Contains(msg, "not found") || strings.Contains(msg, "MANIFEST_UNKNOWN") ||
		strings.Contains(msg, "NAME_UNKNOWN")
}

func appendNew(ss []string, s string) []string {
	if slices.Contains(ss, s) {
		return ss
	}
	return append(ss, s)
}

// quietMissingCache returns s with the import of a registry cache that
// does not exist yet (every first build of a repository or family) shown
// as done, not as an error: it is not one. Other cache errors stay, and
// Result.Warnings sums them up. s is not modified.
func quietMissingCache(s *client.SolveStatus) *client.SolveStatus {
	var out *client.SolveStatus
	for i, v := range s.Vertexes {
		if v.Error == "" || !strings.HasPrefix(v.Name, cacheImportVertexPrefix) || !isNotFound(v.Error) {
			continue
		}
		if out == nil {
			c := *s
			c.Vertexes = slices.Clone(s.Vertexes)
			out = &c
		}
		q := *v
		q.Name, q.Error = v.Name+" (none yet)", ""
		out.Vertexes[i] = &q
	}
	if out == nil {
		return s
	}
	return out
}
