package tlsconf

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"
)

// Files names a node's TLS material: the CA certificate(s) it trusts and its
// own certificate and private key, all PEM. All empty means TLS off.
type Files struct {
	CA, Cert, Key string
}

// Enabled reports whether any of the files is set.
func (f Files) Enabled() bool { return f.CA != "" || f.Cert != "" || f.Key != "" }

// Validate reports a partial set, naming the missing flags.
func (f Files) Validate() error {
	if !f.Enabled() {
		return nil
	}
	var missing []string
	for _, x := range []struct{ flag, v string }{{"--tls-ca", f.CA}, {"--tls-cert", f.Cert}, {"--tls-key", f.Key}} {
		if x.v == "" {
			missing = append(missing, x.flag)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("TLS needs --tls-ca, --tls-cert and --tls-key together: %s not set", strings.Join(missing, " and "))
	}
	return nil
}

// AddFlags registers --tls-ca, --tls-cert and --tls-key on fs, filling f.
func AddFlags(fs *pflag.FlagSet, f *Files) {
	fs.StringVar(&f.CA, "tls-ca", "", "mutual TLS: PEM `FILE` of the CA that signs every node's certificate (with --tls-cert and --tls-key; made by ringtrain certs)")
	fs.StringVar(&f.Cert, "tls-cert", "", "mutual TLS: PEM `FILE` of this node's certificate")
	fs.StringVar(&f.Key, "tls-key", "", "mutual TLS: PEM `FILE` of this node's private key")
}
