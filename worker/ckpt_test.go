package worker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/ringtrain/ringtrain/cluster"
)

// Loading a checkpoint waits for the coordinator's record (a worker can see
// the generation first); an upload does not wait.
func TestCoordinatorConnWaits(t *testing.T) {
	w := &Worker{cfg: Config{CoordinatorDial: []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}}}
	if _, err := w.coordinatorConn(t.Context(), false); !errors.Is(err, errNoCoordinator) {
		t.Fatalf("without a coordinator, no wait: %v, want errNoCoordinator", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := w.coordinatorConn(ctx, true); !errors.Is(err, errNoCoordinator) {
		t.Fatalf("without a coordinator until the deadline: %v, want errNoCoordinator", err)
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		w.coord.Set(&cluster.CoordinatorRecord{Address: "127.0.0.1:1"})
	}()
	cc, err := w.coordinatorConn(t.Context(), true)
	if err != nil {
		t.Fatalf("with a coordinator arriving later: %v", err)
	}
	cc.Close()
}

func TestCoordinatorAway(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("load the checkpoint of step 4: %w", errNoCoordinator), true},
		{fmt.Errorf("load: %w", status.Error(codes.Unavailable, "connection refused")), true},
		{status.Error(codes.NotFound, "no checkpoint of step 4"), false},
		{errors.New("checkpoint file name \"../x\""), false},
	} {
		if got := coordinatorAway(c.err); got != c.want {
			t.Errorf("coordinatorAway(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
