// Command mklayer builds the plldb Lambda layer zip for one architecture:
//
//	go run ./layer/cmd/mklayer -arch x86_64|arm64 -o build/layer-ARCH.zip
//
// The zip holds plldb/wrapper and plldb/proxy (both mode 0755), which Lambda unpacks under /opt.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/plldb/plldb/layer/layerzip"
)

func main() {
	arch := flag.String("arch", layerzip.HostArch(), "Lambda architecture: x86_64 or arm64")
	out := flag.String("o", "", "output zip (default build/layer-ARCH.zip)")
	tags := flag.String("tags", "", "extra go build tags for the proxy")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "mklayer: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	if *out == "" {
		*out = "build/layer-" + *arch + ".zip"
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := layerzip.Build(ctx, layerzip.Options{Arch: *arch, Out: *out, Tags: *tags}); err != nil {
		fmt.Fprintf(os.Stderr, "mklayer: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(*out)
}
