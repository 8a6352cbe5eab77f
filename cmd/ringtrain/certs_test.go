package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringtrain/ringtrain/tlsconf"
)

func runCerts(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newCertsCmd()
	var out bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	return out.String(), err
}

func TestCertsCommand(t *testing.T) {
	dir := t.TempDir()
	pki := filepath.Join(dir, "pki")
	if out, err := runCerts(t, "--out", pki, "--hosts", "etcd,*.ringtrain-worker,10.0.0.5,127.0.0.1"); err != nil {
		t.Fatalf("certs: %v\n%s", err, out)
	}
	for name, perm := range map[string]os.FileMode{"ca.crt": 0o644, "ca.key": 0o600, "node.crt": 0o644, "node.key": 0o600} {
		st, err := os.Stat(filepath.Join(pki, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != perm {
			t.Errorf("%s: mode %v, want %v", name, st.Mode().Perm(), perm)
		}
	}
	node := tlsconf.Files{CA: filepath.Join(pki, "ca.crt"), Cert: filepath.Join(pki, "node.crt"), Key: filepath.Join(pki, "node.key")}
	if _, err := tlsconf.Load(node); err != nil {
		t.Fatalf("load what certs wrote: %v", err)
	}
	c := readCert(t, node.Cert)
	if strings.Join(c.DNSNames, ",") != "etcd,*.ringtrain-worker" || len(c.IPAddresses) != 2 || c.Subject.CommonName != "node" {
		t.Errorf("node.crt: DNS %v IP %v CN %q", c.DNSNames, c.IPAddresses, c.Subject.CommonName)
	}

	// A second node signed by the same CA, into another directory: the CA
	// certificate is copied, its key is not.
	w2 := filepath.Join(dir, "w2")
	if out, err := runCerts(t, "--out", w2, "--ca", pki, "--name", "worker-2", "--hosts", "worker-2", "--days", "30"); err != nil {
		t.Fatalf("certs --ca: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(w2, "ca.key")); err == nil {
		t.Error("ca.key copied next to a node certificate")
	}
	if _, err := tlsconf.Load(tlsconf.Files{CA: filepath.Join(w2, "ca.crt"), Cert: filepath.Join(w2, "worker-2.crt"), Key: filepath.Join(w2, "worker-2.key")}); err != nil {
		t.Fatalf("load worker-2: %v", err)
	}
	if ca, w := readCert(t, node.CA), readCert(t, filepath.Join(w2, "worker-2.crt")); w.CheckSignatureFrom(ca) != nil {
		t.Error("worker-2.crt not signed by pki/ca.crt")
	}
	// Re-issuing in place keeps the CA.
	before, _ := os.ReadFile(node.CA)
	if _, err := runCerts(t, "--out", pki, "--ca", pki, "--hosts", "etcd"); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(node.CA); !bytes.Equal(before, after) {
		t.Error("re-issue with --ca rewrote ca.crt")
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--out", pki, "--hosts", "x"}, "ca.crt exists: pass --ca"},
		{[]string{"--out", filepath.Join(dir, "new"), "--hosts", "a b"}, `host "a b"`},
		{[]string{"--out", filepath.Join(dir, "new")}, "--hosts: required"},
		{[]string{"--hosts", "x"}, "--out: required"},
		{[]string{"--out", filepath.Join(dir, "new"), "--hosts", "x", "--name", "../x"}, "--name"},
		{[]string{"--out", filepath.Join(dir, "new"), "--hosts", "x", "--days", "4000"}, "outlive its CA"},
		{[]string{"--out", filepath.Join(dir, "new"), "--hosts", "x", "--ca", dir}, "--ca: open"},
	} {
		if _, err := runCerts(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("certs %v: %v, want %q", tc.args, err, tc.want)
		}
	}
	// A failed run leaves no half CA behind.
	if _, err := os.Stat(filepath.Join(dir, "new", "ca.crt")); err == nil {
		t.Error("failed certs run wrote new/ca.crt")
	}
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(p.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
