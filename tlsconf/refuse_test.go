package tlsconf

import (
	"net"
	"net/url"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// target is a server with TLS from this package: a gRPC server with the
// health service, or the embedded etcd server (whose gRPC port has the
// health service too).
type target struct {
	name string
	addr string // 127.0.0.1:port
	log  *logBuf
}

// startTargets starts both kinds of server with node files issued by ca.
func startTargets(t *testing.T, ca *CA) []target {
	t.Helper()
	return startTargetsWith(t, writeValidNode(t, t.TempDir(), "server", ca))
}

// startTargetsWith starts both kinds of server, each with its own Node
// loaded from files.
func startTargetsWith(t *testing.T, files Files) []target {
	t.Helper()
	return []target{startTarget(t, "grpc", files), startTarget(t, "etcd", files)}
}

// startTarget starts one server of kind "grpc" or "etcd" with files.
func startTarget(t *testing.T, kind string, files Files) target {
	t.Helper()
	n, log := loadNode(t, files)
	if kind == "etcd" {
		u, err := url.Parse(startEtcd(t, n))
		if err != nil {
			t.Fatal(err)
		}
		return target{kind, u.Host, log}
	}
	return target{kind, net.JoinHostPort("127.0.0.1", startHealthServer(t, n.ServerOption())), log}
}

// refusedBy checks that the server refused a connection the client saw fail
// with err, for the reason serverErr. The client's error text is logged, not
// checked: with TLS 1.3 the server verifies the client's certificate after
// the client finished its side, so the client reads the server's alert
// ("remote error: tls: ...") or, when the server closed first, a broken pipe.
func refusedBy(t *testing.T, tg target, what string, err error, serverErr string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: connected, want refused", what)
	}
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("%s: code %v (%v), want Unavailable", what, status.Code(err), err)
	}
	t.Logf("%s: client saw: %v", what, err)
	waitLog(t, tg.log, serverErr)
}

func TestRefusesNoClientCertificate(t *testing.T) {
	ca := newTestCA(t, "ca")
	for _, tg := range startTargets(t, ca) {
		t.Run(tg.name, func(t *testing.T) {
			err := checkHealth(t, tg.addr, rawClient(ca, nil))
			refusedBy(t, tg, "client without certificate", err, "tls: client didn't provide a certificate")
		})
	}
}

func TestRefusesCertificateFromAnotherCA(t *testing.T) {
	ca, other := newTestCA(t, "ca"), newTestCA(t, "other")
	cert := issuePair(t, other, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	for _, tg := range startTargets(t, ca) {
		t.Run(tg.name, func(t *testing.T) {
			err := checkHealth(t, tg.addr, rawClient(ca, cert))
			refusedBy(t, tg, "client with another CA's certificate", err, "x509: certificate signed by unknown authority")
		})
	}
}

func TestRefusesExpiredCertificate(t *testing.T) {
	ca := newTestCA(t, "ca")
	cert := issuePair(t, ca, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	for _, tg := range startTargets(t, ca) {
		t.Run(tg.name, func(t *testing.T) {
			err := checkHealth(t, tg.addr, rawClient(ca, cert))
			refusedBy(t, tg, "client with expired certificate", err, "x509: certificate has expired or is not yet valid")
		})
	}
}

func TestGoodClientConnects(t *testing.T) {
	ca := newTestCA(t, "ca")
	cli, _ := loadNode(t, writeValidNode(t, t.TempDir(), "client", ca))
	for _, tg := range startTargets(t, ca) {
		t.Run(tg.name, func(t *testing.T) {
			_, port, _ := net.SplitHostPort(tg.addr)
			for _, host := range testHosts { // a DNS name and an IP SAN
				if err := checkHealth(t, net.JoinHostPort(host, port), cli.DialOption()); err != nil {
					t.Fatalf("dial %s: %v", host, err)
				}
			}
			plain, _ := loadNode(t, Files{})
			err := checkHealth(t, tg.addr, plain.DialOption())
			if err == nil {
				t.Fatal("plaintext client got through")
			}
			t.Logf("plaintext client: %v", err)
		})
	}
}
