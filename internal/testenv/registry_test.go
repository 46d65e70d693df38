package testenv

import (
	"net/http"
	"os"
	"testing"
)

func TestStartRegistry(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts RegistryOptions
		want int
	}{
		{"anonymous", RegistryOptions{}, http.StatusOK},
		{"htpasswd", RegistryOptions{Username: "alice", Password: "s3cret"}, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := StartRegistry(t, tc.opts)
			resp, err := http.Get("http://" + r.Host + "/v2/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("GET /v2/ = %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.opts.Username != "" {
				req, _ := http.NewRequest(http.MethodGet, "http://"+r.Host+"/v2/", nil)
				req.SetBasicAuth(tc.opts.Username, tc.opts.Password)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("GET /v2/ with credentials = %d, want 200", resp.StatusCode)
				}
			}
			if _, err := os.Stat(r.LogPath); err != nil {
				t.Errorf("log file: %v", err)
			}
		})
	}
}
