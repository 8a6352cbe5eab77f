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
	files := writeValidNode(t, t.TempDir(), "server", ca)
	gn, glog := loadNode(t, files)
	en, elog := loadNode(t, files)
	eu, err := url.Parse(startEtcd(t, en))
	if err != nil {
		t.Fatal(err)
	}
	return []target{
		{"grpc", net.JoinHostPort("127.0.0.1", startHealthServer(t, gn.ServerOption())), glog},
		{"etcd", eu.Host, elog},
	}
}

func TestRefusesNoClientCertificate(t *testing.T) {
	ca := newTestCA(t, "ca")
	for _, tg := range startTargets(t, ca) {
		t.Run(tg.name, func(t *testing.T) {
			err := checkHealth(t, tg.addr, rawClient(ca, nil))
			wantRefused(t, "client without certificate", err, "certificate required")
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("code %v, want Unavailable", status.Code(err))
			}
			waitLog(t, tg.log, "client didn't provide a certificate")
		})
	}
}

func TestRefusesCertificateFromAnotherCA(t *testing.T) {
	ca, other := newTestCA(t, "ca"), newTestCA(t, "other")
	cert := issuePair(t, other, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	for _, tg := range startTargets(t, ca) {
		t.Run(tg.name, func(t *testing.T) {
			err := checkHealth(t, tg.addr, rawClient(ca, cert))
			wantRefused(t, "client with another CA's certificate", err, "unknown certificate authority")
			waitLog(t, tg.log, "certificate signed by unknown authority")
		})
	}
}

func TestRefusesExpiredCertificate(t *testing.T) {
	ca := newTestCA(t, "ca")
	cert := issuePair(t, ca, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	for _, tg := range startTargets(t, ca) {
		t.Run(tg.name, func(t *testing.T) {
			err := checkHealth(t, tg.addr, rawClient(ca, cert))
			wantRefused(t, "client with expired certificate", err, "expired certificate")
			waitLog(t, tg.log, "certificate has expired")
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
