package auth

import "time"

// NotAfter returns the expiry of the certificate in force (the zero time
// when it cannot be read).
func (s *ServerTLS) NotAfter() time.Time {
	cfg := s.cur.Load()
	if cfg == nil || len(cfg.Certificates) == 0 || cfg.Certificates[0].Leaf == nil {
		return time.Time{}
	}
	return cfg.Certificates[0].Leaf.NotAfter
}
