//go:build race

package main

// buildFlags are the flags of the binary built by the process tests: the
// same instrumentation as the test binary, so the build cache is shared.
var buildFlags = []string{"-race"}
