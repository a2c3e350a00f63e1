//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package journal

import "os"

// lockFile does nothing on systems without flock: there, keeping a
// directory to one process is the application's business.
func lockFile(*os.File) error { return nil }
