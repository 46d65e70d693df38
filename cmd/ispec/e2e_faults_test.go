package main

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
)

// waitHealth waits until the server's health is want, on the health
// service's Watch stream (the server sends each change; no polling).
func waitHealth(t *testing.T, srv *serveProc, want grpc_health_v1.HealthCheckResponse_ServingStatus) {
	t.Helper()
	conn, err := grpc.NewClient(srv.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	watchHealth(t, conn, want, srv.log)
}

// watchHealth follows the health of conn's server until it is want, for at
// most 30 s.
func watchHealth(t *testing.T, conn *grpc.ClientConn, want grpc_health_v1.HealthCheckResponse_ServingStatus, log fmt.Stringer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := grpc_health_v1.NewHealthClient(conn).Watch(ctx, &grpc_health_v1.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatalf("health watch: %v", err)
	}
	var got grpc_health_v1.HealthCheckResponse_ServingStatus
	for got != want {
		resp, err := st.Recv()
		if err != nil {
			t.Fatalf("health %v (%v), want %v within 30s\n%v", got, err, want, log)
		}
		got = resp.GetStatus()
	}
}

// TestServeStartedBeforeItsBuildkit: a server whose BuildKit is not up
// yet is NOT_SERVING and fails builds as unavailable; once the daemon
// answers, health is SERVING and the next build works.
func TestServeStartedBeforeItsBuildkit(t *testing.T) {
	env := e2e(t)
	d := env.StartBuildkitd(t)
	d.Stop()
	srv := startServe(t, "--buildkit-addr", d.Host, "--failure-ttl", "1h")
	waitHealth(t, srv, grpc_health_v1.HealthCheckResponse_NOT_SERVING)
	s := uniqueSpec(t, env, "commands: [\"echo late > /late.txt\"]\n")
	if _, errOut, code := runProc(t, "build", "--server", srv.addr, s); code != exitUnavailable {
		t.Fatalf("with no BuildKit: exit %d %q, want 3", code, errOut)
	}
	d.Start()
	waitHealth(t, srv, grpc_health_v1.HealthCheckResponse_SERVING)
	out, errOut, code := runProc(t, "build", "--server", srv.addr, "--json", s)
	var res buildResult
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.Outcome != "built" {
		t.Fatalf("with BuildKit up: exit %d out %q\n%s", code, out, errOut)
	}
}
