package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

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
		Serve: serveConfig{
			Listen:            v.GetString("listen"),
			MetricsListen:     v.GetString("metrics-listen"),
			AllowedRegistries: v.GetStringSlice("allowed-registries"),
			MaxBuilds:         v.GetInt("max-builds"),
			MaxQueue:          v.GetInt("max-queue"),
			BuildTimeout:      v.GetDuration("build-timeout"),
			FailureTTL:        v.GetDuration("failure-ttl"),
			ShutdownGrace:     v.GetDuration("shutdown-grace"),
			TLSCert:           v.GetString("tls-cert"),
			TLSKey:            v.GetString("tls-key"),
			ClientCA:          v.GetString("client-ca"),
			LogFormat:         v.GetString("log-format"),
			UploadDir:         v.GetString("upload-dir"),
		},
	}
	if c.BuildkitAddr == "" {
		c.BuildkitAddr = os.Getenv("BUILDKIT_HOST")
	}
	return c, nil
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
