package main

import (
	"bufio"
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringtrain/ringtrain/tlsconf"
)

// TestEtcdCommandTLS runs `ringtrain etcd` with the files of `ringtrain
// certs`: it advertises https, a client with a certificate gets through, a
// plaintext client does not.
func TestEtcdCommandTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := clusterBinary(t)
	pki := filepath.Join(t.TempDir(), "pki")
	if out, err := runCerts(t, "--out", pki, "--hosts", "localhost,127.0.0.1"); err != nil {
		t.Fatalf("certs: %v\n%s", err, out)
	}
	files := tlsconf.Files{CA: filepath.Join(pki, "ca.crt"), Cert: filepath.Join(pki, "node.crt"), Key: filepath.Join(pki, "node.key")}
	client, peer := freePort(t), freePort(t)
	cmd := exec.Command(bin, "etcd", "--data-dir", filepath.Join(t.TempDir(), "etcd"),
		"--listen-client", "http://"+client, "--listen-peer", "http://"+peer,
		"--tls-ca", files.CA, "--tls-cert", files.Cert, "--tls-key", files.Key)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	serving, logged := make(chan string, 1), make(chan struct{})
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		<-logged
		cmd.Wait()
	}()
	go func() {
		defer close(logged)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Log(sc.Text())
			if m := regexp.MustCompile(`msg="etcd serving" client=(\S+)`).FindStringSubmatch(sc.Text()); m != nil {
				serving <- m[1]
			}
		}
	}()
	var url string
	select {
	case url = <-serving:
	case <-time.After(60 * time.Second):
		t.Fatal("etcd did not start within 60s")
	}
	if url != "https://"+client {
		t.Fatalf("advertised %s, want https://%s", url, client)
	}
	tn, err := tlsconf.Load(files)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cli, err := newEtcdClient(url, tn)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatalf("put with TLS: %v", err)
	}
	plain, err := newEtcdClient("http://"+client, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	pctx, pcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer pcancel()
	if _, err := plain.Get(pctx, "k"); err == nil {
		t.Fatal("plaintext client read from the TLS etcd")
	}
	out, err := exec.Command(bin, "etcd", "--data-dir", t.TempDir(), "--tls-ca", files.CA).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--tls-cert and --tls-key not set") {
		t.Fatalf("etcd with --tls-ca alone: %v, %s", err, out)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
