package tlsconf

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestIssue(t *testing.T) {
	nb := time.Now().Truncate(time.Second).Add(-time.Hour)
	ca, err := NewCA("test CA", nb, nb.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue("node-1", []string{"node-1.example", "*.ringtrain-worker", "10.0.0.7", "::1"}, nb, nb.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(certPEM)
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.DNSNames, []string{"node-1.example", "*.ringtrain-worker"}) {
		t.Errorf("DNS SANs %v", c.DNSNames)
	}
	if len(c.IPAddresses) != 2 || !c.IPAddresses[0].Equal(net.ParseIP("10.0.0.7")) || !c.IPAddresses[1].Equal(net.ParseIP("::1")) {
		t.Errorf("IP SANs %v", c.IPAddresses)
	}
	if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
		t.Errorf("extended key usage %v", c.ExtKeyUsage)
	}
	if !c.NotBefore.Equal(nb) || !c.NotAfter.Equal(nb.Add(24*time.Hour)) || c.Subject.CommonName != "node-1" {
		t.Errorf("validity %v..%v, CN %q", c.NotBefore, c.NotAfter, c.Subject.CommonName)
	}
	if c.IsCA || c.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("IsCA %v, key %v", c.IsCA, c.PublicKeyAlgorithm)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool, DNSName: "ringtrain-worker-2.ringtrain-worker", CurrentTime: nb.Add(time.Hour)}); err != nil {
		t.Errorf("wildcard SAN: %v", err)
	}
	if _, err := parseECKey(keyPEM); err != nil {
		t.Error(err)
	}

	kp, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseCA(ca.CertPEM(), kp, "ca.crt", "ca.key")
	if err != nil || !back.Cert.Equal(ca.Cert) || !back.Key.Equal(ca.Key) {
		t.Fatalf("ParseCA round trip: %v", err)
	}
	other, _ := NewCA("other", nb, nb.Add(time.Hour))
	okp, _ := other.KeyPEM()
	if _, err := ParseCA(ca.CertPEM(), okp, "ca.crt", "ca.key"); err == nil || err.Error() != "ca.key does not match ca.crt" {
		t.Errorf("mismatched CA key: %v", err)
	}
	if _, err := ParseCA(certPEM, keyPEM, "node.crt", "node.key"); err == nil || !strings.Contains(err.Error(), "node.crt: not a CA certificate") {
		t.Errorf("node certificate as CA: %v", err)
	}
}

func TestIssueRejectsBadHosts(t *testing.T) {
	ca := newTestCA(t, "ca")
	now := time.Now()
	for _, h := range []string{"", "a..b", "two words", "*", "a.*.b", "x*.b", "host:7070"} {
		if _, _, err := ca.Issue("n", []string{h}, now, now.Add(time.Hour)); err == nil {
			t.Errorf("host %q accepted", h)
		}
	}
	if _, _, err := ca.Issue("n", nil, now, now.Add(time.Hour)); err == nil {
		t.Error("no hosts accepted")
	}
}
