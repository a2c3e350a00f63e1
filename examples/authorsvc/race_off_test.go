//go:build !race

package main

// buildFlags are the flags of the binary built by the process tests.
var buildFlags = []string{}
