package worker

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/ringtrain/ringtrain/cluster"
	"github.com/ringtrain/ringtrain/embedetcd"
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

// An upload finds the coordinator's record in etcd when the watch has not
// delivered it yet (a fast job checkpoints before it does); with none in
// etcd either, it does not wait.
func TestCoordinatorConnReadsEtcd(t *testing.T) {
	e, err := embedetcd.Start(embedetcd.Config{DataDir: filepath.Join(t.TempDir(), "etcd")})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.ClientURL}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	w := &Worker{cfg: Config{Etcd: cli, CoordinatorDial: []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}},
		k: cluster.Keys{Prefix: "/t"}}
	if _, err := w.coordinatorConn(t.Context(), false); !errors.Is(err, errNoCoordinator) {
		t.Fatalf("no record anywhere: %v, want errNoCoordinator", err)
	}
	if _, err := cli.Put(t.Context(), w.k.Coordinator(), `{"address":"127.0.0.1:7"}`); err != nil {
		t.Fatal(err)
	}
	cc, err := w.coordinatorConn(t.Context(), false)
	if err != nil {
		t.Fatalf("record in etcd only: %v", err)
	}
	defer cc.Close()
	if cc.Target() != "127.0.0.1:7" {
		t.Errorf("dialled %s, want the record's 127.0.0.1:7", cc.Target())
	}
}
