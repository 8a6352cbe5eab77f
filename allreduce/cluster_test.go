package allreduce

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// cluster is W ring members of one generation over one kind of transport.
type cluster struct {
	rings   []*Ring
	servers []*grpc.Server // nil for the in-memory transport
}

// transportKind builds a cluster; tests loop over all kinds.
type transportKind struct {
	name string
	// build connects W members; wrap, if not nil, wraps each member's
	// transport (to inject faults).
	build func(t testing.TB, cfg Config, wrap func(rank int, tr Transport) Transport) *cluster
}

var transportKinds = []transportKind{
	{name: "inmem", build: buildInmem},
	{name: "grpc", build: buildGRPC},
	{name: "grpc-frames", build: buildGRPCFrames},
	{name: "grpc-tls", build: buildGRPCTLS},
}

func buildInmem(t testing.TB, cfg Config, wrap func(int, Transport) Transport) *cluster {
	t.Helper()
	net := NewInmemNetwork()
	trs := make([]Transport, cfg.WorldSize)
	for i := range trs {
		trs[i] = net
		if wrap != nil {
			trs[i] = wrap(i, net)
		}
	}
	return connectAll(t, cfg, trs, nil)
}

// buildGRPC builds servers with NewGRPCServer: chunks on the raw path.
func buildGRPC(t testing.TB, cfg Config, wrap func(int, Transport) Transport) *cluster {
	t.Helper()
	return buildGRPCServers(t, cfg, wrap, func(tr *GRPCTransport) *grpc.Server { return NewGRPCServer(tr) })
}

// buildGRPCTLS is buildGRPC with mutual TLS (SetCredentials): the raw
// path has the TLS handshake too.
func buildGRPCTLS(t testing.TB, cfg Config, wrap func(int, Transport) Transport) *cluster {
	t.Helper()
	creds := testTLS(t)
	return buildGRPCServers(t, cfg, wrap, func(tr *GRPCTransport) *grpc.Server {
		tr.SetCredentials(creds)
		return NewGRPCServer(tr)
	})
}

// testTLS returns mutual-TLS credentials with one certificate for
// 127.0.0.1, signed by a throwaway CA, for servers and clients alike.
func testTLS(t testing.TB) credentials.TransportCredentials {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey, leafKey := key(), key()
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "node"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	cert := tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}
	return credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13})
}

// buildGRPCFrames builds plain servers (ServerOptions and Register): chunks
// on the gRPC streams.
func buildGRPCFrames(t testing.TB, cfg Config, wrap func(int, Transport) Transport) *cluster {
	t.Helper()
	return buildGRPCServers(t, cfg, wrap, func(tr *GRPCTransport) *grpc.Server {
		srv := grpc.NewServer(ServerOptions()...)
		tr.Register(srv)
		return srv
	})
}

func buildGRPCServers(t testing.TB, cfg Config, wrap func(int, Transport) Transport, newServer func(*GRPCTransport) *grpc.Server) *cluster {
	t.Helper()
	w := cfg.WorldSize
	trs := make([]Transport, w)
	servers := make([]*grpc.Server, w)
	addrs := make([]string, w)
	for i := range w {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		tr := NewGRPCTransport()
		srv := newServer(tr)
		go srv.Serve(lis)
		servers[i] = srv
		addrs[i] = lis.Addr().String()
		trs[i] = tr
		if wrap != nil {
			trs[i] = wrap(i, tr)
		}
	}
	cfg.Peers = addrs
	c := connectAll(t, cfg, trs, servers)
	return c
}

// connectAll creates the rings of all ranks concurrently (New blocks until
// the neighbours connect) and registers their cleanup.
func connectAll(t testing.TB, cfg Config, trs []Transport, servers []*grpc.Server) *cluster {
	t.Helper()
	c := &cluster{rings: make([]*Ring, cfg.WorldSize), servers: servers}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	errs := make([]error, cfg.WorldSize)
	var wg sync.WaitGroup
	for i := range cfg.WorldSize {
		wg.Go(func() {
			rc := cfg
			rc.Rank = i
			c.rings[i], errs[i] = New(ctx, trs[i], rc)
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, r := range c.rings {
			if r != nil {
				r.Close()
			}
		}
		for _, s := range c.servers {
			s.Stop()
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: New: %v", i, err)
		}
	}
	return c
}

// each runs f for every rank concurrently and returns the errors by rank.
func (c *cluster) each(f func(rank int, r *Ring) error) []error {
	errs := make([]error, len(c.rings))
	var wg sync.WaitGroup
	for i, r := range c.rings {
		wg.Go(func() { errs[i] = f(i, r) })
	}
	wg.Wait()
	return errs
}

// wrapTransport lets tests intercept a member's link.
type wrapTransport struct {
	Transport
	wrap func(Link) Link
}

func (w wrapTransport) Connect(ctx context.Context, m Member) (Link, error) {
	l, err := w.Transport.Connect(ctx, m)
	if err != nil {
		return nil, err
	}
	return w.wrap(l), nil
}

// hookLink calls onSend before each send and onRecv after each receive.
type hookLink struct {
	Link
	mu     sync.Mutex
	sends  int
	recvs  int
	onSend func(n int, f *OutFrame)
	onRecv func(n int)
}

func (h *hookLink) Send(f *OutFrame) error {
	if h.onSend != nil {
		h.mu.Lock()
		n := h.sends
		h.sends++
		h.mu.Unlock()
		h.onSend(n, f)
	}
	return h.Link.Send(f)
}

func (h *hookLink) Recv(s Sink) error {
	err := h.Link.Recv(s)
	if err == nil && h.onRecv != nil {
		h.mu.Lock()
		n := h.recvs
		h.recvs++
		h.mu.Unlock()
		h.onRecv(n)
	}
	return err
}
