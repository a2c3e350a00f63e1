package keycloak

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// register registers c with reg and returns the collector to use: c, or the
// equal collector registered before (several verifiers or clients may share
// one registry). A nil reg leaves c unregistered.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}
