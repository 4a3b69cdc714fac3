package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
)

// version is the release version, set at build time with
// -ldflags "-X main.version=v1.2.3".
var version = "dev"

func init() {
	register(&command{
		name:    "version",
		summary: "print the version and build information",
		usage:   "scpgate version [-deps]",
		run:     runVersion,
	})
}

func runVersion(_ context.Context, args []string) error {
	fs := newFlagSet("version")
	deps := fs.Bool("deps", false, "also list the modules compiled in")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q", fs.Arg(0))
	}
	w := os.Stdout
	fmt.Fprintf(w, "scpgate %s\n", version)
	fmt.Fprintf(w, "go       %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return nil
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		if settings["vcs.modified"] == "true" {
			rev += " (modified)"
		}
		fmt.Fprintf(w, "commit   %s\n", rev)
	}
	if t := settings["vcs.time"]; t != "" {
		fmt.Fprintf(w, "time     %s\n", t)
	}
	if tags := settings["-tags"]; tags != "" {
		fmt.Fprintf(w, "tags     %s\n", tags) // driveronly: the driver-only build
	}
	if *deps {
		fmt.Fprintf(w, "module   %s %s\n", info.Main.Path, info.Main.Version)
		for _, d := range info.Deps {
			if d.Replace != nil {
				d = d.Replace
			}
			fmt.Fprintf(w, "dep      %s %s\n", d.Path, d.Version)
		}
	}
	return nil
}
