package builder

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestNewUnavailable(t *testing.T) {
	addr := "unix://" + filepath.Join(t.TempDir(), "missing.sock")
	start := time.Now()
	_, err := New(context.Background(), Options{Addr: addr, DialTimeout: 2 * time.Second})
	var ue *UnavailableError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v (%T), want *UnavailableError", err, err)
	}
	if ue.Addr != addr || !strings.Contains(err.Error(), addr) || strings.Contains(err.Error(), "--buildkit-addr") {
		t.Errorf("error %q should name the address and leave CLI advice to the CLI", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s to give up", d)
	}
}

func TestCheckPlatforms(t *testing.T) {
	b := &Builder{platforms: []ocispecs.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "386"}}}
	if _, err := b.checkPlatforms([]string{"linux/amd64", "linux/386"}); err != nil {
		t.Errorf("supported platforms: %v", err)
	}
	_, err := b.checkPlatforms([]string{"linux/amd64", "linux/arm64"})
	var pe *PlatformError
	if !errors.As(err, &pe) || pe.Platform != "linux/arm64" {
		t.Errorf("err = %v, want a PlatformError for linux/arm64", err)
	}
}

func TestBaseRef(t *testing.T) {
	img := loadSpec(t, "name: x\nbase_image: "+testBase+"\n", nil)
	if got := baseRef(img, "", amd64); got != testBase {
		t.Errorf("baseRef = %q", got)
	}
	if got := baseRef(img, "reg/parent@sha256:1", amd64); got != "reg/parent@sha256:1" {
		t.Errorf("override: %q", got)
	}
}
