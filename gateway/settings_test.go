package gateway

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/config"
)

func TestSettingsProblemNamesTheSetting(t *testing.T) {
	m := config.MQTTConfig{Host: "broker.example", Port: 8883, Password: "s3cret"}
	for _, tc := range []struct {
		err  error
		want string // "" : retried, not a settings problem
	}{
		{&autopaho.ConnackError{ReasonCode: 0x86}, "mqtt.username/mqtt.password"},
		{&autopaho.ConnackError{ReasonCode: 0x87}, "mqtt.username/mqtt.password"},
		{&autopaho.ConnackError{ReasonCode: 0x85}, "mqtt.client_id"},
		{&autopaho.ConnackError{ReasonCode: 0x84}, "mqtt.host"},
		{&autopaho.ConnackError{ReasonCode: 0x88}, ""}, // server unavailable
		{&autopaho.ConnackError{ReasonCode: 0x89}, ""}, // server busy
		{fmt.Errorf("failed to connect: %w", x509.UnknownAuthorityError{}), "mqtt.tls_ca_file"},
		{fmt.Errorf("failed to connect: %w", x509.HostnameError{Certificate: &x509.Certificate{}, Host: "broker.example"}), "mqtt.host"},
		{fmt.Errorf("failed to connect: %w", &net.OpError{Op: "remote error", Err: errors.New("tls: certificate required")}), "mqtt.tls_cert_file"},
		{fmt.Errorf("failed to connect: %w", &net.OpError{Op: "dial", Err: errors.New("connection refused")}), ""},
		{io.EOF, ""},
	} {
		p := settingsProblem(tc.err, m)
		if tc.want == "" {
			require.Nil(t, p, "%v", tc.err)
			continue
		}
		require.NotNil(t, p, "%v", tc.err)
		require.Equal(t, tc.want, p.Key)
		require.NotContains(t, p.Error(), "s3cret")
		require.Contains(t, p.Error(), "broker.example:8883")
	}
}
