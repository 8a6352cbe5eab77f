package tlsconf

import (
	"log/slog"
	"net"
	"net/url"
	"strings"
)

// WarnPlaintext logs one warning line when TLS is off and any of addrs
// (host:port, :port or a URL, as given to --listen, --advertise,
// --listen-client...) can be reached from other machines. It reports whether
// it warned.
func (n *Node) WarnPlaintext(addrs ...string) bool {
	if n.Enabled() {
		return false
	}
	var open []string
	for _, a := range addrs {
		if a != "" && !loopback(a) {
			open = append(open, a)
		}
	}
	if len(open) == 0 {
		return false
	}
	log := slog.Default()
	if n != nil {
		log = n.log
	}
	log.Warn("TLS is off and these addresses are reachable from other machines: anyone who can connect can join or steer the job (use --tls-ca, --tls-cert and --tls-key, see docs/tls.md)",
		"addrs", strings.Join(open, ","))
	return true
}

// loopback reports whether addr only listens on or names this machine.
func loopback(addr string) bool {
	if strings.Contains(addr, "://") {
		u, err := url.Parse(addr)
		if err != nil {
			return false
		}
		if u.Scheme == "unix" || u.Scheme == "unixs" {
			return true
		}
		addr = u.Host
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
