package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/spec"
)

// config is every setting that comes from outside a spec file, resolved
// from defaults < config file < ISPEC_* env < flags. Core packages receive
// plain values taken from it, never viper itself.
type config struct {
	Registry           string
	CacheDir           string
	BuildkitAddr       string
	BaseImage          string
	PythonBase         string
	CUDABase           string
	InsecureRegistries []string
	// PipNetrc is a netrc file with private index credentials, handed to
	// pip as a BuildKit secret.
	PipNetrc string
	// CacheRegistry is where the registry cache goes ("host[:port][/path]");
	// empty: next to each image.
	CacheRegistry string
	// Locked refuses specs whose Python requirements float (build
	// --locked, config key locked, ISPEC_LOCKED).
	Locked bool
	// RegistryCache is the registry-cache setting when given (config,
	// ISPEC_REGISTRY_CACHE or --registry-cache); nil: on for pushes only.
	RegistryCache *bool
	// BuildkitTLS secures a tcp:// BuildKit address (buildkit-ca,
	// buildkit-cert, buildkit-key); zero: a plain connection.
	BuildkitTLS builder.TLS
	// Server is the address of an `ispec serve` to build and look up
	// through instead of locally; TokenFile or Token authenticate to it.
	Server    string
	TokenFile string
	Token     string
	// The rest configure `ispec serve`.
	Serve serveConfig
}

// serveConfig is what `ispec serve` reads besides the common settings.
type serveConfig struct {
	Listen, MetricsListen     string
	AllowedRegistries         []string
	MaxBuilds, MaxQueue       int
	BuildTimeout, FailureTTL  time.Duration
	ShutdownGrace             time.Duration
	TLSCert, TLSKey, ClientCA string
	LogFormat, UploadDir      string
	// UploadCacheSize bounds the server's blob store, UploadInFlight the
	// blob bytes it receives at once.
	UploadCacheSize, UploadInFlight int64
	// RedisURL is the Redis replicas share leases, build events and
	// failures through; empty: coordination in process only.
	RedisURL string
	// LeaseTTL is how long a tag's lease lives without renewal.
	LeaseTTL time.Duration
	// MaxPerDaemon bounds the builds at once on each daemon of a pool.
	MaxPerDaemon int
	// TLSTerminatedByProxy lets tokens be served over plain text on a
	// non-loopback address: a proxy in front terminates TLS.
	TLSTerminatedByProxy bool
	// AllowedLookupRegistries are the registries the server may read
	// from besides AllowedRegistries; empty: any.
	AllowedLookupRegistries []string
}

// newViper reads the config file (flag --config, else ISPEC_CONFIG, else
// $XDG_CONFIG_HOME/ispec/config.yaml when present) and ISPEC_* env.
func newViper(cmd *cobra.Command) (*viper.Viper, error) {
	v := viper.New()
	v.SetEnvPrefix("ISPEC")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	v.SetDefault("base-image", spec.DefaultBaseImage)
	v.SetDefault("python-base", spec.DefaultPythonBase)
	v.SetDefault("cuda-base", spec.DefaultCUDABase)
	if dir, err := os.UserCacheDir(); err == nil {
		v.SetDefault("cache-dir", filepath.Join(dir, "ispec"))
	}
	file, _ := cmd.Flags().GetString("config")
	if file == "" {
		file = os.Getenv("ISPEC_CONFIG")
	}
	if file == "" {
		if dir, err := os.UserConfigDir(); err == nil {
			if p := filepath.Join(dir, "ispec", "config.yaml"); fileExists(p) {
				file = p
			}
		}
	}
	if file != "" {
		v.SetConfigFile(file)
		if err := v.ReadInConfig(); err != nil {
			return nil, usageError{fmt.Errorf("reading config file %s: %w", file, err)}
		}
		if err := checkConfigKeys(file, v.AllKeys()); err != nil {
			return nil, err
		}
	}
	var bindErr error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Name == "config" || f.Name == "help" {
			return
		}
		if err := v.BindPFlag(f.Name, f); err != nil && bindErr == nil {
			bindErr = err
		}
	})
	return v, bindErr
}

// loadConfig resolves the command's settings into a config.
func loadConfig(cmd *cobra.Command) (*config, error) {
	v, err := newViper(cmd)
	if err != nil {
		return nil, err
	}
	c := &config{
		Registry:           v.GetString("registry"),
		CacheDir:           v.GetString("cache-dir"),
		BuildkitAddr:       v.GetString("buildkit-addr"),
		BaseImage:          v.GetString("base-image"),
		PythonBase:         v.GetString("python-base"),
		CUDABase:           v.GetString("cuda-base"),
		InsecureRegistries: v.GetStringSlice("insecure-registries"),
		PipNetrc:           v.GetString("pip-netrc"),
		Server:             v.GetString("server"),
		TokenFile:          v.GetString("token-file"),
		Token:              v.GetString("token"),
		Serve:              loadServeConfig(v),
		CacheRegistry:      v.GetString("cache-registry"),
		Locked:             v.GetBool("locked"),
	}
	if err := loadSizes(v, &c.Serve); err != nil {
		return nil, err
	}
	if v.IsSet("registry-cache") {
		on := v.GetBool("registry-cache")
		c.RegistryCache = &on
	}
	if c.BuildkitAddr == "" {
		c.BuildkitAddr = os.Getenv("BUILDKIT_HOST")
	}
	if err := checkCacheDir(c.CacheDir); err != nil {
		return nil, err
	}
	c.BuildkitTLS = builder.TLS{CACert: v.GetString("buildkit-ca"), Cert: v.GetString("buildkit-cert"), Key: v.GetString("buildkit-key")}
	if err := checkBuildkitTLS(c.BuildkitTLS); err != nil {
		return nil, err
	}
	if cmd.Flags().Lookup("cache-registry") != nil {
		if err := builder.CheckCacheRegistry(c.CacheRegistry); err != nil {
			return nil, usageError{fmt.Errorf("cache-registry: %w", err)}
		}
	}
	return c, nil
}

// loadServeConfig resolves the settings of `ispec serve` but its sizes.
func loadServeConfig(v *viper.Viper) serveConfig {
	return serveConfig{
		Listen:                  v.GetString("listen"),
		MetricsListen:           v.GetString("metrics-listen"),
		AllowedRegistries:       v.GetStringSlice("allowed-registries"),
		AllowedLookupRegistries: v.GetStringSlice("allowed-lookup-registries"),
		MaxBuilds:               v.GetInt("max-builds"),
		MaxQueue:                v.GetInt("max-queue"),
		BuildTimeout:            v.GetDuration("build-timeout"),
		FailureTTL:              v.GetDuration("failure-ttl"),
		ShutdownGrace:           v.GetDuration("shutdown-grace"),
		TLSCert:                 v.GetString("tls-cert"),
		TLSKey:                  v.GetString("tls-key"),
		ClientCA:                v.GetString("client-ca"),
		LogFormat:               v.GetString("log-format"),
		UploadDir:               v.GetString("upload-dir"),
		RedisURL:                v.GetString("redis-url"),
		LeaseTTL:                v.GetDuration("lease-ttl"),
		MaxPerDaemon:            v.GetInt("max-builds-per-daemon"),
		TLSTerminatedByProxy:    v.GetBool("tls-terminated-by-proxy"),
	}
}

// loadSizes reads the server's byte sizes ("4GiB") into sc.
func loadSizes(v *viper.Viper, sc *serveConfig) error {
	for _, sz := range []struct {
		key string
		to  *int64
	}{{"upload-cache-size", &sc.UploadCacheSize}, {"upload-in-flight", &sc.UploadInFlight}} {
		if raw := v.GetString(sz.key); raw != "" {
			n, err := parseBytes(raw)
			if err != nil {
				return usageError{fmt.Errorf("%s: %w", sz.key, err)}
			}
			*sz.to = n
		}
	}
	return nil
}

// configKeys returns the settings a config file may hold: the fields of
// config.
func configKeys() []string {
	return []string{"registry", "cache-dir", "buildkit-addr", "buildkit-ca", "buildkit-cert", "buildkit-key", "base-image", "python-base", "cuda-base", "insecure-registries", "pip-netrc",
		"cache-registry", "registry-cache", "locked",
		// A server to go through.
		"server", "token-file", "token",
		// ispec serve.
		"listen", "metrics-listen", "allowed-registries", "allowed-lookup-registries", "max-builds", "max-queue", "build-timeout", "failure-ttl",
		"shutdown-grace", "tls-cert", "tls-key", "client-ca", "log-format", "upload-dir",
		"upload-cache-size", "upload-in-flight", "redis-url", "lease-ttl", "max-builds-per-daemon", "tls-terminated-by-proxy"}
}

// checkConfigKeys refuses keys of a config file that are no setting (a
// typo would otherwise be ignored), suggesting the closest setting. keys
// are viper's: the file's keys, nested ones joined with dots, and the
// defaults, which are all settings.
func checkConfigKeys(file string, keys []string) error {
	var errs []error
	known := configKeys()
	sort.Strings(keys)
	for _, k := range keys {
		if slices.Contains(known, k) {
			continue
		}
		msg := fmt.Sprintf("config file %s: unknown key %q", file, k)
		top, _, nested := strings.Cut(k, ".")
		switch near := spec.Closest(top, known); {
		case nested && slices.Contains(known, top):
			msg += fmt.Sprintf(" (%s takes a value, not a mapping)", top)
		case near != "":
			msg += fmt.Sprintf("; did you mean %q?", near)
		default:
			msg += fmt.Sprintf(" (settings: %s)", strings.Join(known, ", "))
		}
		errs = append(errs, errors.New(msg))
	}
	if len(errs) > 0 {
		return usageError{errors.Join(errs...)}
	}
	return nil
}

// checkCacheDir refuses a cache dir that is a file or lies under one; a
// folder that does not exist yet is made when needed.
func checkCacheDir(dir string) error {
	if dir == "" {
		return nil
	}
	fi, err := os.Stat(dir)
	switch {
	case err == nil && !fi.IsDir():
		return usageError{fmt.Errorf("cache dir %s is not a folder: point --cache-dir or ISPEC_CACHE_DIR (cache-dir in the config file) at a folder", dir)}
	case errors.Is(err, syscall.ENOTDIR):
		return usageError{fmt.Errorf("cache dir %s lies under a file, not a folder: point --cache-dir or ISPEC_CACHE_DIR (cache-dir in the config file) at a folder", dir)}
	}
	return nil
}

// cacheMode is when builds use the registry cache; noCache is
// --no-registry-cache, which wins.
func (c *config) cacheMode(noCache bool) builder.CacheMode {
	switch {
	case noCache || (c.RegistryCache != nil && !*c.RegistryCache):
		return builder.CacheOff
	case c.RegistryCache != nil:
		return builder.CacheOn
	}
	return builder.CacheAuto
}

func (c *config) specOptions() spec.Options {
	return spec.Options{
		Registry: c.Registry,
		Defaults: spec.Defaults{BaseImage: c.BaseImage, PythonBase: c.PythonBase, CUDABase: c.CUDABase},
		// The pip netrc is a secret too: never copied into an image.
		SecretFiles: nonEmpty(c.PipNetrc),
	}
}

// nonEmpty is the list of the strings given that are not empty.
func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// parseBytes reads a size: a number of bytes, or with a unit K, M, G or T
// (KiB, MiB, ... and KB, MB, ... alike: powers of 1024), as in "4GiB".
func parseBytes(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mult := int64(1)
	if t != "" {
		if i := strings.IndexByte("KMGT", t[len(t)-1]); i >= 0 {
			mult = 1 << (10 * (i + 1))
			t = strings.TrimSpace(t[:len(t)-1])
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a positive size such as 4GiB or 512MiB", s)
	}
	return n * mult, nil
}
