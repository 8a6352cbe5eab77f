package tlsconf

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Node is one process's TLS material, re-read from its files on every new
// connection. The zero of *Node (nil) and a Node loaded from empty Files are
// TLS off.
type Node struct {
	files Files
	log   *slog.Logger

	mu      sync.Mutex
	cur     *material
	lastErr string // the reload error last logged, so each is logged once
}

// material is one consistent set of CA, certificate and key.
type material struct {
	raw  [3][]byte // the files' bytes: CA, certificate, key
	cert tls.Certificate
	pool *x509.CertPool
}

// Load checks f and reads its files. With TLS off (all of f empty) it returns
// a Node that hands out plaintext credentials.
func Load(f Files) (*Node, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	n := &Node{files: f, log: slog.Default()}
	if !f.Enabled() {
		return n, nil
	}
	raw, err := f.read()
	if err != nil {
		return nil, err
	}
	m, err := f.parse(raw, time.Now())
	if err != nil {
		return nil, err
	}
	n.cur = m
	return n, nil
}

// Enabled reports whether TLS is on.
func (n *Node) Enabled() bool { return n != nil && n.cur != nil }

// material returns the current set, taking the files' contents first when
// they changed and are consistent.
func (n *Node) material() *material {
	n.mu.Lock()
	defer n.mu.Unlock()
	raw, err := n.files.read()
	if err == nil && bytes.Equal(raw[0], n.cur.raw[0]) && bytes.Equal(raw[1], n.cur.raw[1]) && bytes.Equal(raw[2], n.cur.raw[2]) {
		return n.cur
	}
	var m *material
	if err == nil {
		m, err = n.files.parse(raw, time.Now())
	}
	if err != nil {
		if msg := err.Error(); msg != n.lastErr {
			n.lastErr = msg
			n.log.Warn("tls: replaced files not used, keeping the previous certificate", "err", err)
		}
		return n.cur
	}
	n.cur, n.lastErr = m, ""
	leaf := m.cert.Leaf
	n.log.Info("tls: new certificate in use", "cert", n.files.Cert, "subject", leaf.Subject.String(), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	return m
}

// read returns the bytes of the CA, certificate and key files.
func (f Files) read() ([3][]byte, error) {
	var raw [3][]byte
	for i, x := range []struct{ flag, path string }{{"--tls-ca", f.CA}, {"--tls-cert", f.Cert}, {"--tls-key", f.Key}} {
		b, err := os.ReadFile(x.path)
		if err != nil {
			return raw, fmt.Errorf("%s: %w", x.flag, err)
		}
		raw[i] = b
	}
	return raw, nil
}

// parse checks that raw is a set this node can serve and dial with at time
// now: a key matching the certificate, the certificate signed by one of the
// CA certificates, valid now, for both TLS server and client auth.
func (f Files) parse(raw [3][]byte, now time.Time) (*material, error) {
	pool := x509.NewCertPool()
	rest, nca := raw[0], 0
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca %s: %w", f.CA, err)
		}
		pool.AddCert(c)
		nca++
	}
	if nca == 0 {
		return nil, fmt.Errorf("--tls-ca %s: no PEM CERTIFICATE in the file", f.CA)
	}
	cert, err := tls.X509KeyPair(raw[1], raw[2])
	if err != nil {
		return nil, fmt.Errorf("--tls-cert %s with --tls-key %s: %w", f.Cert, f.Key, err)
	}
	leaf := cert.Leaf // set by X509KeyPair since Go 1.23
	if now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		return nil, fmt.Errorf("--tls-cert %s: valid from %s to %s, not now (%s)", f.Cert,
			leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	for _, u := range []struct {
		usage x509.ExtKeyUsage
		name  string
	}{{x509.ExtKeyUsageServerAuth, "server"}, {x509.ExtKeyUsageClientAuth, "client"}} {
		opts := x509.VerifyOptions{Roots: pool, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{u.usage}}
		if _, err := leaf.Verify(opts); err != nil {
			return nil, fmt.Errorf("--tls-cert %s as TLS %s against --tls-ca %s: %w", f.Cert, u.name, f.CA, err)
		}
	}
	return &material{raw: raw, cert: cert, pool: pool}, nil
}

// serverConfig requires and verifies a client certificate signed by the CA.
// Session tickets are off so that every connection is verified against the
// CA in use when it is made.
func (m *material) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS12,
		Certificates:           []tls.Certificate{m.cert},
		ClientAuth:             tls.RequireAndVerifyClientCert,
		ClientCAs:              m.pool,
		SessionTicketsDisabled: true,
	}
}

// clientConfig presents the node certificate (whatever CAs the server says it
// accepts, so that a mismatch shows as the server's verification error) and
// verifies the server against the CA. The caller sets ServerName.
func (m *material) clientConfig() *tls.Config {
	cert := m.cert
	return &tls.Config{
		MinVersion:           tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil },
		RootCAs:              m.pool,
	}
}
