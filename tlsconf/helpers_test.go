package tlsconf

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// hosts every test server certificate names.
var testHosts = []string{"localhost", "127.0.0.1"}

func newTestCA(t *testing.T, name string) *CA {
	t.Helper()
	ca, err := NewCA(name, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// writeNode writes ca's certificate and a node pair issued by ca for hosts,
// valid from nb to na, into dir (files ca.crt, NAME.crt, NAME.key) and
// returns their paths. Files are replaced by rename, as `ringtrain certs`
// and Kubernetes secret updates do.
func writeNode(t *testing.T, dir, name string, ca *CA, hosts []string, nb, na time.Time) Files {
	t.Helper()
	cert, key, err := ca.Issue(name, hosts, nb, na)
	if err != nil {
		t.Fatal(err)
	}
	f := Files{CA: filepath.Join(dir, "ca.crt"), Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key")}
	writeFile(t, f.CA, ca.CertPEM())
	writeFile(t, f.Cert, cert)
	writeFile(t, f.Key, key)
	return f
}

func writeValidNode(t *testing.T, dir, name string, ca *CA) Files {
	return writeNode(t, dir, name, ca, testHosts, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// copyFiles replaces dst's files with src's (those set in dst).
func copyFiles(t *testing.T, dst, src Files) {
	t.Helper()
	for _, p := range [][2]string{{dst.CA, src.CA}, {dst.Cert, src.Cert}, {dst.Key, src.Key}} {
		if p[0] == "" {
			continue
		}
		b, err := os.ReadFile(p[1])
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, p[0], b)
	}
}

// logBuf collects a Node's log lines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// loadNode loads f with the node's log going to the returned buffer.
func loadNode(t *testing.T, f Files) (*Node, *logBuf) {
	t.Helper()
	n, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	lb := &logBuf{}
	n.log = slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return n, lb
}

// startHealthServer serves the gRPC health service with opt on a loopback
// port and returns its port.
func startHealthServer(t *testing.T, opt grpc.ServerOption) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(opt)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	_, port, _ := net.SplitHostPort(lis.Addr().String())
	return port
}

// checkHealth makes a new connection to addr with opt and calls the health
// service once.
func checkHealth(t *testing.T, addr string, opt grpc.DialOption) error {
	t.Helper()
	cc := dial(t, addr, opt)
	defer cc.Close()
	return healthOf(t, cc)
}

func dial(t *testing.T, addr string, opt grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, opt)
	if err != nil {
		t.Fatal(err)
	}
	return cc
}

// healthOf calls the health service on cc.
func healthOf(t *testing.T, cc *grpc.ClientConn) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	if err == nil && r.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health of %s: %v", cc.Target(), r.Status)
	}
	return err
}

// rawClient is a client built by hand, not by this package: it presents
// cert (none if nil) and trusts roots.
func rawClient(roots *CA, cert *tls.Certificate) grpc.DialOption {
	pool := x509.NewCertPool()
	pool.AddCert(roots.Cert)
	cfg := &tls.Config{RootCAs: pool}
	if cert != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return grpc.WithTransportCredentials(credentials.NewTLS(cfg))
}

// issuePair issues a tls.Certificate from ca valid from nb to na.
func issuePair(t *testing.T, ca *CA, nb, na time.Time) *tls.Certificate {
	t.Helper()
	c, k, err := ca.Issue("client", testHosts, nb, na)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	return &pair
}

// wantRefused fails unless err is non-nil and contains want.
func wantRefused(t *testing.T, what string, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: connected, want refused", what)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("%s: error %q, want it to contain %q", what, err, want)
	}
	t.Logf("%s: %v", what, err)
}

// waitLog waits until the node's log has a line containing want: a server
// logs a refused handshake after the client has seen the refusal.
func waitLog(t *testing.T, lb *logBuf, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(lb.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("server log has no %q:\n%s", want, lb)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, l := range strings.Split(lb.String(), "\n") {
		if strings.Contains(l, want) {
			t.Logf("server log: %s", l)
			break
		}
	}
}
