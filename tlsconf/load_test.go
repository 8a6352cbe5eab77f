package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	ca, other := newTestCA(t, "ca"), newTestCA(t, "other")
	good := writeValidNode(t, dir, "good", ca)
	now := time.Now()
	expired := writeNode(t, filepath.Join(dir), "expired", ca, testHosts, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	foreign := writeNode(t, t.TempDir(), "foreign", other, testHosts, now.Add(-time.Hour), now.Add(time.Hour))
	clientOnly := writeClientOnly(t, dir, ca)
	garbage := filepath.Join(dir, "garbage.crt")
	writeFile(t, garbage, []byte("not PEM\n"))
	for _, tc := range []struct {
		name  string
		files Files
		want  string
	}{
		{"only CA", Files{CA: good.CA}, "--tls-cert and --tls-key not set"},
		{"no key", Files{CA: good.CA, Cert: good.Cert}, "--tls-key not set"},
		{"missing file", Files{CA: good.CA, Cert: filepath.Join(dir, "nope.crt"), Key: good.Key}, "--tls-cert: open " + filepath.Join(dir, "nope.crt")},
		{"CA not PEM", Files{CA: garbage, Cert: good.Cert, Key: good.Key}, "--tls-ca " + garbage + ": no PEM CERTIFICATE"},
		{"key of another cert", Files{CA: good.CA, Cert: good.Cert, Key: expired.Key}, "private key does not match public key"},
		{"expired", Files{CA: good.CA, Cert: expired.Cert, Key: expired.Key}, "--tls-cert " + expired.Cert + ": valid from"},
		{"another CA", Files{CA: good.CA, Cert: foreign.Cert, Key: foreign.Key}, "certificate signed by unknown authority"},
		{"client auth only", Files{CA: good.CA, Cert: clientOnly.Cert, Key: clientOnly.Key}, "as TLS server against --tls-ca"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.files)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load: %v, want an error containing %q", err, tc.want)
			}
			t.Logf("%v", err)
		})
	}
	n, err := Load(good)
	if err != nil || !n.Enabled() {
		t.Fatalf("good files: %v", err)
	}
	off, err := Load(Files{})
	if err != nil || off.Enabled() {
		t.Fatalf("no files: enabled=%v err=%v", off.Enabled(), err)
	}
	var none *Node
	if none.Enabled() || none.ClientTLSConfig() != nil {
		t.Fatal("nil Node is not TLS off")
	}
}

// writeClientOnly writes a certificate signed by ca that is valid for TLS
// client auth only.
func writeClientOnly(t *testing.T, dir string, ca *CA) Files {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "client-only"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := keyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	f := Files{CA: filepath.Join(dir, "ca.crt"), Cert: filepath.Join(dir, "client-only.crt"), Key: filepath.Join(dir, "client-only.key")}
	writeFile(t, f.Cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	writeFile(t, f.Key, kp)
	return f
}

func TestValidateNamesMissingFlags(t *testing.T) {
	for _, tc := range []struct {
		f    Files
		want string
	}{
		{Files{}, ""},
		{Files{CA: "a", Cert: "b", Key: "c"}, ""},
		{Files{Cert: "b", Key: "c"}, "--tls-ca not set"},
		{Files{Key: "c"}, "--tls-ca and --tls-cert not set"},
	} {
		err := tc.f.Validate()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.f, err, tc.want)
		}
	}
}

func TestLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{":7070", false},
		{"0.0.0.0:7070", false},
		{"[::]:7070", false},
		{"10.1.2.3:7071", false},
		{"worker-0.ringtrain-worker:7071", false},
		{"http://0.0.0.0:2379", false},
		{"http://etcd:2379", false},
		{"127.0.0.1:7070", true},
		{"127.0.0.5:7070", true},
		{"[::1]:7070", true},
		{"localhost:7070", true},
		{"http://127.0.0.1:2379", true},
		{"https://localhost:2379", true},
		{"unix:///tmp/etcd.sock", true},
	} {
		if got := loopback(tc.addr); got != tc.want {
			t.Errorf("loopback(%q) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

func TestWarnPlaintext(t *testing.T) {
	ca := newTestCA(t, "ca")
	on, onLog := loadNode(t, writeValidNode(t, t.TempDir(), "n", ca))
	off, offLog := loadNode(t, Files{})
	if on.WarnPlaintext(":7070") || onLog.String() != "" {
		t.Fatalf("warned with TLS on: %s", onLog)
	}
	if off.WarnPlaintext("127.0.0.1:7070", "http://127.0.0.1:2379", "") || offLog.String() != "" {
		t.Fatalf("warned for loopback addresses: %s", offLog)
	}
	if !off.WarnPlaintext("127.0.0.1:7070", ":7071", "http://0.0.0.0:2379") {
		t.Fatal("no warning for :7071 with TLS off")
	}
	lines := strings.Split(strings.TrimSpace(offLog.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[0], `addrs=:7071,http://0.0.0.0:2379`) {
		t.Fatalf("want one warning line naming :7071 and http://0.0.0.0:2379, got:\n%s", offLog)
	}
	t.Log(lines[0])
	// A nil Node logs to the default logger (not checked here) and says so.
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	defer slog.SetDefault(old)
	var none *Node
	if !none.WarnPlaintext(":7070") {
		t.Fatal("nil Node did not warn")
	}
}
