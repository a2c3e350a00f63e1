// Package archtest holds the test that checks the dependency direction of
// the module's packages (leaves, router, transports, adapters, apps).
package archtest
