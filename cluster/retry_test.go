package cluster

import (
	"context"
	"errors"
	"log/slog"
	"testing"
)

// TestRetryFinal checks that Retry retries a failure until f succeeds, but
// returns an error marked Final at once, unwrapped.
func TestRetryFinal(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	calls := 0
	err := Retry(context.Background(), nil, log, "flaky", func(context.Context) error {
		if calls++; calls < 3 {
			return errors.New("etcd away")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("flaky: err %v after %d calls, want nil after 3", err, calls)
	}
	errNo := errors.New("condition failed")
	calls = 0
	err = Retry(context.Background(), nil, log, "final", func(context.Context) error {
		calls++
		return Final(errNo)
	})
	if err != errNo || calls != 1 {
		t.Fatalf("final: err %v after %d calls, want %v after 1", err, calls, errNo)
	}
}
