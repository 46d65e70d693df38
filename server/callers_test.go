package server

import (
	"fmt"
	"testing"
)

func TestCallerLabelsAreBounded(t *testing.T) {
	var l callerLabels
	for i := range maxCallerLabels {
		name := fmt.Sprintf("cn-%d", i)
		if got := l.label(name); got != name {
			t.Fatalf("label(%s) = %s", name, got)
		}
	}
	if got := l.label("one-too-many"); got != "other" {
		t.Errorf("past %d names: %q, want other", maxCallerLabels, got)
	}
	if got := l.label("cn-3"); got != "cn-3" {
		t.Errorf("a name seen before: %q", got)
	}
}
