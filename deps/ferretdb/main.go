// Command ferretdb runs FerretDB v1 (embedded, SQLite backend) as MultiVAC's
// local and test MongoDB-compatible store.
//
// Why not `go install .../cmd/ferretdb`: the Go proxy refuses the module's
// version list that `go install` consults, and FerretDB's own main refuses to
// start without build-time version files that module downloads lack. The
// embeddable package has neither problem. Flags mirror the ones of FerretDB's
// CLI that MultiVAC's scripts use; the rest are accepted and ignored.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on")
	handler := flag.String("handler", "sqlite", "backend: sqlite or postgresql")
	sqliteURL := flag.String("sqlite-url", "file:data/", "SQLite directory URI")
	postgresURL := flag.String("postgresql-url", "", "PostgreSQL URL")
	logLevel := flag.String("log-level", "error", "debug, info, warn or error")
	flag.String("state-dir", "", "ignored")
	flag.String("debug-addr", "", "ignored")
	flag.String("telemetry", "", "ignored")
	flag.Parse()

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: invalid --log-level %q\n", *logLevel)
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:      ferretdb.ListenerConfig{TCP: *listen},
		Logger:        logger,
		Handler:       *handler,
		SQLiteURL:     *sqliteURL,
		PostgreSQLURL: *postgresURL,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: %v\n", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := f.Run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: %v\n", err)
		os.Exit(1)
	}
}
