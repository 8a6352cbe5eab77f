package main

import (
	"fmt"
	"log/slog"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/ringtrain/ringtrain/embedetcd"
	"github.com/ringtrain/ringtrain/tlsconf"
)

var etcdFlags struct {
	dataDir, listenClient, advertiseClient, listenPeer, name, logLevel string
	tls                                                                tlsconf.Files
}

var etcdCmd = &cobra.Command{
	Use:   "etcd",
	Short: "Run a single-node etcd server (embedded) for clusters that have none",
	Long: `Runs the real etcd server, embedded, as a single-node cluster: workers register
in it and coordinators elect their leader and publish generations through it.
With --tls-ca, --tls-cert and --tls-key, clients must present a certificate
signed by the CA and the client URLs are https (http:// in --listen-client and
--advertise-client becomes https://). Stops on SIGINT or SIGTERM.`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, args []string) error {
		f := etcdFlags
		if f.dataDir == "" {
			return fmt.Errorf("--data-dir: required")
		}
		tn, err := tlsconf.Load(f.tls)
		if err != nil {
			return err
		}
		tn.WarnPlaintext(f.listenClient)
		ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		e, err := embedetcd.Start(embedetcd.Config{
			DataDir: f.dataDir, ListenClient: f.listenClient, AdvertiseClient: f.advertiseClient,
			ListenPeer: f.listenPeer, Name: f.name, LogLevel: f.logLevel, TLS: tn,
		})
		if err != nil {
			return err
		}
		defer e.Close()
		slog.Info("etcd serving", "client", e.ClientURL, "data_dir", f.dataDir, "tls", tn.Enabled())
		select {
		case <-ctx.Done():
			slog.Info("etcd stopping")
			return nil
		case err := <-e.Err():
			return fmt.Errorf("etcd: %w", err)
		}
	},
}

func init() {
	f := etcdCmd.Flags()
	f.StringVar(&etcdFlags.dataDir, "data-dir", "", "etcd data directory (required)")
	f.StringVar(&etcdFlags.listenClient, "listen-client", "http://127.0.0.1:2379", "URL to serve clients on")
	f.StringVar(&etcdFlags.advertiseClient, "advertise-client", "", "client URL to advertise (default: --listen-client)")
	f.StringVar(&etcdFlags.listenPeer, "listen-peer", "http://127.0.0.1:2380", "URL for etcd peer traffic")
	f.StringVar(&etcdFlags.name, "name", "ringtrain", "etcd member name")
	f.StringVar(&etcdFlags.logLevel, "etcd-log-level", "error", "etcd's own log level: debug, info, warn, error")
	tlsconf.AddFlags(f, &etcdFlags.tls)
	rootCmd.AddCommand(etcdCmd)
}

// newEtcdClient connects to the comma-separated etcd endpoints with tn's
// TLS (none when tn is nil or off). It does not wait for etcd: the
// cluster's calls retry, saying so, until it answers.
func newEtcdClient(urls string, tn *tlsconf.Node) (*clientv3.Client, error) {
	var eps []string
	for _, u := range strings.Split(urls, ",") {
		if u = strings.TrimSpace(u); u != "" {
			eps = append(eps, u)
		}
	}
	if len(eps) == 0 {
		return nil, fmt.Errorf("--etcd %q: no endpoints", urls)
	}
	cfg := clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
	tn.ConfigureEtcdClient(&cfg)
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("--etcd %s: %w", urls, err)
	}
	return cli, nil
}
