package promreg

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRegisterReusesEqualCollectors(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "x_total", Help: "x"}
	a := MustRegister(reg, prometheus.NewCounterVec(opts, []string{"l"}))
	b := MustRegister(reg, prometheus.NewCounterVec(opts, []string{"l"}))
	assert.Same(t, a, b)
	_, err := Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "other"}, []string{"m"}))
	require.Error(t, err)
	assert.Panics(t, func() {
		MustRegister(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "other"}, []string{"m"}))
	})
	c, err := Register[prometheus.Counter](nil, prometheus.NewCounter(opts))
	require.NoError(t, err)
	assert.NotNil(t, c)
}
