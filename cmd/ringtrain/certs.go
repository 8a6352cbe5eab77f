package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ringtrain/ringtrain/tlsconf"
)

// caDays is how long a new CA is valid: rotating node certificates must not
// need a new CA.
const caDays = 3650

func newCertsCmd() *cobra.Command {
	var f struct {
		out, caDir, name string
		hosts            []string
		days             int
	}
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Make a CA and node certificates for mutual TLS",
		Long: `Writes PEM files for mutual TLS (--tls-ca, --tls-cert, --tls-key of etcd,
coordinator, worker, status and watch), ECDSA P-256:

  OUT/ca.crt, OUT/ca.key   a new self-signed CA, valid 10 years (not with --ca)
  OUT/NAME.crt, NAME.key   a key pair and certificate signed by the CA, valid
                           --days, usable as TLS server and client, for --hosts
                           (each a DNS name, *.domain, or an IP address)

With --ca DIR the CA in DIR/ca.crt and DIR/ca.key signs the new certificate and
DIR/ca.crt is copied to OUT (its key is not). Without --ca, an existing
OUT/ca.crt is an error rather than replaced. Keys are written with mode 0600;
files are replaced atomically, so running servers pick up a re-issued
certificate on their next connection.

  ringtrain certs --out pki --hosts etcd,coordinator,worker-1,10.0.0.5
  ringtrain certs --out pki --ca pki --name worker-2 --hosts worker-2,10.0.0.6`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.out == "" {
				return errors.New("--out: required")
			}
			if len(f.hosts) == 0 {
				return errors.New("--hosts: required (DNS names or IP addresses, comma-separated)")
			}
			if f.name == "" || f.name == "ca" || strings.ContainsAny(f.name, `/\`) || f.name == "." || f.name == ".." {
				return fmt.Errorf("--name %q: want a plain file name other than ca", f.name)
			}
			if f.days <= 0 {
				return fmt.Errorf("--days %d: want a positive number of days", f.days)
			}
			if err := os.MkdirAll(f.out, 0o755); err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			now := time.Now()
			ca, files, err := certsCA(f.out, f.caDir, now)
			if err != nil {
				return err
			}
			notAfter := now.Add(time.Duration(f.days) * 24 * time.Hour)
			if notAfter.After(ca.Cert.NotAfter) {
				return fmt.Errorf("--days %d: the certificate would outlive its CA (valid until %s)", f.days, ca.Cert.NotAfter.UTC().Format(time.DateOnly))
			}
			// Backdated a little for machines whose clocks are behind.
			cert, key, err := ca.Issue(f.name, f.hosts, now.Add(-5*time.Minute), notAfter)
			if err != nil {
				return fmt.Errorf("--hosts: %w", err)
			}
			certPath, keyPath := filepath.Join(f.out, f.name+".crt"), filepath.Join(f.out, f.name+".key")
			files = append(files, certFile{keyPath, key, 0o600}, certFile{certPath, cert, 0o644})
			for _, cf := range files {
				if err := writeCertFile(cf); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s and %s for %s, valid until %s\n", certPath, keyPath,
				strings.Join(f.hosts, ","), notAfter.UTC().Format(time.RFC3339))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.out, "out", "", "output `DIR` (required)")
	fl.StringSliceVar(&f.hosts, "hosts", nil, "DNS names and IP addresses the certificate is for, comma-separated (required)")
	fl.StringVar(&f.caDir, "ca", "", "`DIR` with ca.crt and ca.key to sign with (default: a new CA in --out)")
	fl.StringVar(&f.name, "name", "node", "file name of the certificate and key (NAME.crt, NAME.key) and its common name")
	fl.IntVar(&f.days, "days", 365, "days the certificate is valid")
	return cmd
}

func init() { rootCmd.AddCommand(newCertsCmd()) }

// certFile is a file for certs to write.
type certFile struct {
	path string
	data []byte
	perm os.FileMode
}

// certsCA loads the CA of caDir, or makes a new one for out; files are the
// CA files to write into out.
func certsCA(out, caDir string, now time.Time) (*tlsconf.CA, []certFile, error) {
	outCert, outKey := filepath.Join(out, "ca.crt"), filepath.Join(out, "ca.key")
	if caDir == "" {
		for _, p := range []string{outCert, outKey} {
			if _, err := os.Stat(p); err == nil {
				return nil, nil, fmt.Errorf("%s exists: pass --ca %s to sign with that CA, or remove it for a new one", p, out)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return nil, nil, err
			}
		}
		ca, err := tlsconf.NewCA("ringtrain CA", now.Add(-5*time.Minute), now.Add(caDays*24*time.Hour))
		if err != nil {
			return nil, nil, err
		}
		key, err := ca.KeyPEM()
		if err != nil {
			return nil, nil, err
		}
		return ca, []certFile{{outKey, key, 0o600}, {outCert, ca.CertPEM(), 0o644}}, nil
	}
	certPath, keyPath := filepath.Join(caDir, "ca.crt"), filepath.Join(caDir, "ca.key")
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, fmt.Errorf("--ca: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, fmt.Errorf("--ca: %w", err)
	}
	ca, err := tlsconf.ParseCA(certPEM, keyPEM, certPath, keyPath)
	if err != nil {
		return nil, nil, fmt.Errorf("--ca: %w", err)
	}
	if now.After(ca.Cert.NotAfter) {
		return nil, nil, fmt.Errorf("--ca: %s expired on %s", certPath, ca.Cert.NotAfter.UTC().Format(time.DateOnly))
	}
	if same, err := sameDir(out, caDir); err != nil || same {
		return ca, nil, err
	}
	return ca, []certFile{{outCert, certPEM, 0o644}}, nil
}

func sameDir(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(sa, sb), nil
}

// writeCertFile replaces f.path atomically.
func writeCertFile(f certFile) error {
	tmp, err := os.CreateTemp(filepath.Dir(f.path), "."+filepath.Base(f.path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	_, err = tmp.Write(f.data)
	if err == nil {
		err = tmp.Chmod(f.perm)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), f.path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	return nil
}
