package server_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	apiv1 "github.com/ispec-dev/ispec/api/ispec/v1"
	"github.com/ispec-dev/ispec/client"
	"github.com/ispec-dev/ispec/ensure"
)

// rawAPI is the API without the client package, to send any token.
func as(token string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
}

// watch follows a build to its end: the events' count, or the error.
func watch(api apiv1.ImageServiceClient, token, id string) (int, error) {
	ctx, cancel := context.WithTimeout(as(token), time.Minute)
	defer cancel()
	s, err := api.Watch(ctx, &apiv1.WatchRequest{BuildId: id})
	if err != nil {
		return 0, err
	}
	n := 0
	for {
		if _, err := s.Recv(); err == io.EOF {
			return n, nil
		} else if err != nil {
			return n, err
		}
		n++
	}
}

func listed(t *testing.T, api apiv1.ImageServiceClient, token string) map[string]*apiv1.BuildInfo {
	t.Helper()
	resp, err := api.ListBuilds(as(token), &apiv1.ListBuildsRequest{})
	if err != nil {
		t.Fatalf("ListBuilds: %v", err)
	}
	out := map[string]*apiv1.BuildInfo{}
	for _, b := range resp.GetBuilds() {
		out[b.GetBuildId()] = b
	}
	return out
}

func TestCallersSeeTheirOwnBuilds(t *testing.T) {
	h := start(t, setup{tokens: []string{"# callers", "alice:alice-token", "bob:bob-token", "ops:ops-token:admin"}})
	build := func(token string) string {
		var id string
		img := h.newSpec(t, "commands: [\"echo scoped > /s.txt\"]\n")
		_, err := h.client(t, client.WithToken(token)).Build(context.Background(), img, ensure.Request{Sink: func(ev ensure.Event) {
			if ev.Kind == ensure.KindAccepted {
				id = ev.BuildID
			}
		}}, apiv1.ProgressDetail_PROGRESS_DETAIL_NONE)
		if err != nil || id == "" {
			t.Fatalf("build with %s: id %q, %v", token, id, err)
		}
		return id
	}
	aliceID, bobID := build("alice-token"), build("bob-token")
	api := rawAPI(t, h.addr)

	alice := listed(t, api, "alice-token")
	if len(alice) != 1 || alice[aliceID].GetStartedBy() != "alice" {
		t.Errorf("alice lists %v, want her build only, started by alice", alice)
	}
	bob := listed(t, api, "bob-token")
	if len(bob) != 1 || bob[bobID].GetStartedBy() != "bob" {
		t.Errorf("bob lists %v, want his build only", bob)
	}
	if ops := listed(t, api, "ops-token"); len(ops) != 2 || ops[aliceID] == nil || ops[bobID] == nil {
		t.Errorf("the admin lists %v, want both builds", ops)
	}

	if n, err := watch(api, "alice-token", aliceID); err != nil || n < 2 {
		t.Errorf("alice watching her build: %d events, %v", n, err)
	}
	_, other := watch(api, "alice-token", bobID)
	_, unknown := watch(api, "alice-token", "0123456789abcdef")
	if status.Code(other) != codes.NotFound || status.Code(unknown) != codes.NotFound {
		t.Errorf("alice watching bob's build: %v; an unknown id: %v; want NOT_FOUND for both", other, unknown)
	}
	if n, err := watch(api, "ops-token", bobID); err != nil || n < 2 {
		t.Errorf("the admin watching bob's build: %d events, %v", n, err)
	}
}

func TestRotatedTokenFileTakesEffectWithoutRestart(t *testing.T) {
	var (
		mu  sync.Mutex
		now = time.Unix(1e9, 0)
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	h := start(t, setup{tokens: []string{"ci:old-token"}, tokenClock: clock})
	api := rawAPI(t, h.addr)
	call := func(token string) codes.Code {
		_, err := api.ListBuilds(as(token), &apiv1.ListBuildsRequest{})
		return status.Code(err)
	}
	if code := call("old-token"); code != codes.OK {
		t.Fatalf("old-token before the rotation: %v", code)
	}
	// As a rotated Secret: a new file renamed over the old one.
	path := h.tokensPath
	tmp := filepath.Join(filepath.Dir(path), "tokens.new")
	if err := os.WriteFile(tmp, []byte("\ufeffci:new-token\r\nops:ops-token:admin  \r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	// The server checks the file on calls, at most once a second.
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	if old, cur, admin := call("old-token"), call("new-token"), call("ops-token"); old != codes.Unauthenticated || cur != codes.OK || admin != codes.OK {
		t.Errorf("after the rotation: old-token %v, new-token %v, ops-token %v; want UNAUTHENTICATED, OK, OK", old, cur, admin)
	}
	// An explicit Reload works as well.
	if err := os.WriteFile(path, []byte("ci:third-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.tokens.Reload(); err != nil {
		t.Fatal(err)
	}
	if cur, next := call("new-token"), call("third-token"); cur != codes.Unauthenticated || next != codes.OK {
		t.Errorf("after Reload: new-token %v, third-token %v; want UNAUTHENTICATED, OK", cur, next)
	}
}
