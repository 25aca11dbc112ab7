package agent

import (
	"fmt"

	"github.com/mrv-agent/mrv-agent/uplink"
)

// uplinkSecurity fills the uplink's TLS configuration (server verification, mTLS with
// certificate reloading, the logged insecure opt-in) and credentials from the config.
func (a *Agent) uplinkSecurity(ucfg *uplink.Config) error {
	m := a.cfg.MQTT
	pass, err := m.Password()
	if err != nil {
		return fmt.Errorf("mqtt.password_file: %w", err)
	}
	tlsCfg, err := uplink.TLSConfig(m.CAFile, m.CertFile, m.KeyFile, m.InsecureSkipVerify, a.log.With("component", "uplink"))
	if err != nil {
		return err
	}
	ucfg.TLS, ucfg.CAFile, ucfg.CertFile = tlsCfg, m.CAFile, m.CertFile
	ucfg.Username, ucfg.Password = m.Username, pass.Reveal()
	return nil
}
