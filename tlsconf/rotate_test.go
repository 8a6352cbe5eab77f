package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// TestRotation replaces a server's CA, certificate and key on disk with a
// set from a new CA, then the client's: each new connection uses the files
// as they are then, open connections go on, nothing is restarted.
func TestRotation(t *testing.T) {
	ca1, ca2 := newTestCA(t, "ca1"), newTestCA(t, "ca2")
	for _, kind := range []string{"grpc", "etcd"} {
		t.Run(kind, func(t *testing.T) {
			srvFiles := writeValidNode(t, t.TempDir(), "server", ca1)
			srvNext := writeValidNode(t, t.TempDir(), "server", ca2)
			tg := startTarget(t, kind, srvFiles)
			cliFiles := writeValidNode(t, t.TempDir(), "client", ca1)
			cliNext := writeValidNode(t, t.TempDir(), "client", ca2)
			cli, cliLog := loadNode(t, cliFiles)
			old := dial(t, tg.addr, cli.DialOption())
			defer old.Close()
			if err := healthOf(t, old); err != nil {
				t.Fatalf("before rotation: %v", err)
			}

			copyFiles(t, srvFiles, srvNext) // the server's files now from ca2
			err := checkHealth(t, tg.addr, cli.DialOption())
			wantRefused(t, "new connection, client still on ca1", err, "x509: certificate signed by unknown authority")
			waitLog(t, tg.log, "tls: new certificate in use")
			if err := healthOf(t, old); err != nil {
				t.Fatalf("connection made before the rotation: %v", err)
			}
			stale := issuePair(t, ca1, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
			err = checkHealth(t, tg.addr, rawClient(ca2, stale))
			refusedBy(t, tg, "new connection with a ca1 certificate", err, "x509: certificate signed by unknown authority")

			copyFiles(t, cliFiles, cliNext) // and the client's
			if err := checkHealth(t, tg.addr, cli.DialOption()); err != nil {
				t.Fatalf("new connection after both rotated: %v", err)
			}
			if !strings.Contains(cliLog.String(), "tls: new certificate in use") {
				t.Fatalf("client did not log the new certificate:\n%s", cliLog)
			}
		})
	}
}

// TestRotationWaitsForConsistentFiles: a certificate replaced before its key
// is not taken; the previous set serves until the files agree, and the
// mismatch is logged once.
func TestRotationWaitsForConsistentFiles(t *testing.T) {
	ca1, ca2 := newTestCA(t, "ca1"), newTestCA(t, "ca2")
	srvFiles := writeValidNode(t, t.TempDir(), "server", ca1)
	srvNext := writeValidNode(t, t.TempDir(), "server", ca2)
	srv, srvLog := loadNode(t, srvFiles)
	addr := net.JoinHostPort("127.0.0.1", startHealthServer(t, srv.ServerOption()))
	cli1, _ := loadNode(t, writeValidNode(t, t.TempDir(), "client", ca1))
	cli2, _ := loadNode(t, writeValidNode(t, t.TempDir(), "client", ca2))

	copyFiles(t, Files{CA: srvFiles.CA, Cert: srvFiles.Cert}, Files{CA: srvNext.CA, Cert: srvNext.Cert})
	for i := range 2 {
		if err := checkHealth(t, addr, cli1.DialOption()); err != nil {
			t.Fatalf("connection %d with the key not yet replaced: %v", i, err)
		}
	}
	const warn = "tls: replaced files not used"
	if got := strings.Count(srvLog.String(), warn); got != 1 {
		t.Fatalf("%d warnings %q, want 1:\n%s", got, warn, srvLog)
	}
	t.Logf("server log: %s", strings.TrimSpace(srvLog.String()))

	copyFiles(t, Files{Key: srvFiles.Key}, Files{Key: srvNext.Key})
	if err := checkHealth(t, addr, cli2.DialOption()); err != nil {
		t.Fatalf("after the key too: %v", err)
	}
	wantRefused(t, "ca1 client after rotation", checkHealth(t, addr, cli1.DialOption()), "certificate signed by unknown authority")
}

// TestClientVerifiesServer: a server this package did not configure, with
// a certificate the client must not accept.
func TestClientVerifiesServer(t *testing.T) {
	ca, other := newTestCA(t, "ca"), newTestCA(t, "other")
	cli, _ := loadNode(t, writeValidNode(t, t.TempDir(), "client", ca))
	now := time.Now()
	for _, tc := range []struct {
		name   string
		ca     *CA
		hosts  []string
		nb, na time.Time
		dial   string // host dialled
		want   string
	}{
		{"another CA", other, testHosts, now.Add(-time.Hour), now.Add(time.Hour), "127.0.0.1", "x509: certificate signed by unknown authority"},
		{"expired", ca, testHosts, now.Add(-48 * time.Hour), now.Add(-24 * time.Hour), "127.0.0.1", "x509: certificate has expired"},
		{"other IP", ca, []string{"127.0.0.2", "localhost"}, now.Add(-time.Hour), now.Add(time.Hour), "127.0.0.1", "x509: certificate is valid for 127.0.0.2, not 127.0.0.1"},
		{"other name", ca, []string{"127.0.0.1", "other.example"}, now.Add(-time.Hour), now.Add(time.Hour), "localhost", "x509: certificate is valid for other.example, not localhost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, k, err := tc.ca.Issue("server", tc.hosts, tc.nb, tc.na)
			if err != nil {
				t.Fatal(err)
			}
			pair, err := tls.X509KeyPair(c, k)
			if err != nil {
				t.Fatal(err)
			}
			pool := x509.NewCertPool()
			pool.AddCert(ca.Cert)
			srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{
				Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool,
			})))
			healthpb.RegisterHealthServer(srv, health.NewServer())
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go srv.Serve(lis)
			defer srv.Stop()
			_, port, _ := net.SplitHostPort(lis.Addr().String())
			wantRefused(t, "server with "+tc.name, checkHealth(t, net.JoinHostPort(tc.dial, port), cli.DialOption()), tc.want)
		})
	}
}

// TestEtcdClientRotation: the etcd client follows a replaced CA too.
func TestEtcdClientRotation(t *testing.T) {
	ca1, ca2 := newTestCA(t, "ca1"), newTestCA(t, "ca2")
	srvFiles := writeValidNode(t, t.TempDir(), "etcd", ca1)
	srv, _ := loadNode(t, srvFiles)
	ep := startEtcd(t, srv)
	cliFiles := writeValidNode(t, t.TempDir(), "client", ca1)
	cli, _ := loadNode(t, cliFiles)
	if err := etcdPut(t, ep, cli); err != nil {
		t.Fatalf("before rotation: %v", err)
	}
	copyFiles(t, srvFiles, writeValidNode(t, t.TempDir(), "etcd", ca2))
	if err := etcdPut(t, ep, cli); err == nil {
		t.Fatal("client on ca1 reached the etcd server rotated to ca2")
	} else {
		t.Logf("client on ca1: %v", err)
	}
	copyFiles(t, cliFiles, writeValidNode(t, t.TempDir(), "client", ca2))
	if err := etcdPut(t, ep, cli); err != nil {
		t.Fatalf("after both rotated: %v", err)
	}
	u, _ := url.Parse(ep)
	if err := checkHealth(t, u.Host, cli.DialOption()); err != nil {
		t.Fatalf("etcd health after rotation: %v", err)
	}
}
