package tlsconf

import (
	"context"
	"net"
	"net/url"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// startEtcd starts a real embedded etcd server configured by n and returns
// its advertised client URL.
func startEtcd(t *testing.T, n *Node) string {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Dir = t.TempDir()
	cfg.LogLevel = "panic"
	client, peer := freeURL(t), freeURL(t)
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	n.ConfigureEtcdServer(cfg)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		t.Fatal(err)
	case <-time.After(60 * time.Second):
		t.Fatal("etcd not ready after 60s")
	}
	return cfg.AdvertiseClientUrls[0].String()
}

func freeURL(t *testing.T) url.URL {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return url.URL{Scheme: "http", Host: l.Addr().String()}
}

// etcdPut makes a new etcd client for endpoint with n's TLS and puts and gets
// one key.
func etcdPut(t *testing.T, endpoint string, n *Node) error {
	t.Helper()
	cfg := clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 3 * time.Second, Logger: zap.NewNop()}
	n.ConfigureEtcdClient(&cfg)
	cli, err := clientv3.New(cfg)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "/tlsconf/test", endpoint); err != nil {
		return err
	}
	r, err := cli.Get(ctx, "/tlsconf/test")
	if err != nil {
		return err
	}
	if len(r.Kvs) != 1 || string(r.Kvs[0].Value) != endpoint {
		t.Fatalf("get back %v", r.Kvs)
	}
	return nil
}

func TestEtcdServesTLSToGoodClient(t *testing.T) {
	ca := newTestCA(t, "ca")
	srv, _ := loadNode(t, writeValidNode(t, t.TempDir(), "etcd", ca))
	cli, _ := loadNode(t, writeValidNode(t, t.TempDir(), "client", ca))
	ep := startEtcd(t, srv)
	u, err := url.Parse(ep)
	if err != nil || u.Scheme != "https" {
		t.Fatalf("advertised client URL %q, want https", ep)
	}
	if err := etcdPut(t, ep, cli); err != nil {
		t.Fatalf("etcd client with TLS: %v", err)
	}
	// The scheme of the endpoint does not decide: an http:// endpoint
	// still gets TLS from ConfigureEtcdClient.
	if err := etcdPut(t, "http://"+u.Host, cli); err != nil {
		t.Fatalf("etcd client with TLS, http:// endpoint: %v", err)
	}
	plain, _ := loadNode(t, Files{})
	if err := etcdPut(t, "http://"+u.Host, plain); err == nil {
		t.Fatal("plaintext etcd client got through")
	} else {
		t.Logf("plaintext etcd client: %v", err)
	}
}
