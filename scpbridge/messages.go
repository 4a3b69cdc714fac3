package scpbridge

// LogStatus is the state of a controller's transaction log. Serials are
// per boot epoch and start at 1; 0 means "none".
type LogStatus struct {
	Capacity   uint32 // transactions the log can hold
	Oldest     uint32 // oldest serial still in the log
	LastLogged uint32 // newest serial logged
	LastAcked  uint32 // newest serial the host acknowledged
}

// Hello is the controller's first frame: who it is and where its log stands.
//
//	serial    str  1..32
//	model     str  0..64
//	firmware  str  0..64
//	mac       6 bytes
//	boot_epoch u32  changes whenever the log restarts (serials restart at 1)
//	capacity, oldest, last_logged, last_acked  u32 each
//	secret    str  0..64, version 1.1 only: absent in a 1.0 hello
type Hello struct {
	Serial    string
	Model     string
	Firmware  string
	MAC       [6]byte
	BootEpoch uint32
	Log       LogStatus
	// Secret is the controller's shared secret (protocol 1.1), empty when
	// none is sent. A hello that carries one is written as version 1.1.
	// Never log it.
	Secret string
}

// frameVersion returns the version a hello is written with: 1.1 when it
// carries a secret, else 1.0.
func (m *Hello) frameVersion() uint8 {
	if m.Secret != "" {
		return VersionMajor<<4 | 1
	}
	return Version
}

// FrameType returns FrameHello.
func (*Hello) FrameType() FrameType { return FrameHello }

// AppendPayload appends the encoded hello.
func (m *Hello) AppendPayload(b []byte) ([]byte, error) {
	e := encoder{b: b, frame: FrameHello}
	if m.Serial == "" {
		e.fail("serial", "empty")
	}
	e.str(m.Serial, MaxSerialLen, "serial")
	e.str(m.Model, MaxModelLen, "model")
	e.str(m.Firmware, MaxFirmwareLen, "firmware")
	e.b = append(e.b, m.MAC[:]...)
	e.u32(m.BootEpoch)
	e.u32(m.Log.Capacity)
	e.u32(m.Log.Oldest)
	e.u32(m.Log.LastLogged)
	e.u32(m.Log.LastAcked)
	if m.Secret != "" {
		e.str(m.Secret, MaxSecretLen, "secret")
	}
	return e.done()
}

// UnmarshalPayload decodes a hello payload of version 1.0: a secret, if
// any, is ignored (see UnmarshalPayloadMinor).
func (m *Hello) UnmarshalPayload(p []byte) error { return m.UnmarshalPayloadMinor(0, p) }

// UnmarshalPayloadMinor decodes a hello payload of minor version minor:
// from 1.1 on, a secret may follow the 1.0 fields.
func (m *Hello) UnmarshalPayloadMinor(minor uint8, p []byte) error {
	d := decoder{b: p, frame: FrameHello}
	m.Serial = d.str(MaxSerialLen, "serial")
	if d.err == nil && m.Serial == "" {
		d.fail("serial", "empty")
	}
	m.Model = d.str(MaxModelLen, "model")
	m.Firmware = d.str(MaxFirmwareLen, "firmware")
	copy(m.MAC[:], d.bytes(6, "mac"))
	m.BootEpoch = d.u32("boot_epoch")
	m.Log.Capacity = d.u32("capacity")
	m.Log.Oldest = d.u32("oldest")
	m.Log.LastLogged = d.u32("last_logged")
	m.Log.LastAcked = d.u32("last_acked")
	m.Secret = ""
	if minor >= 1 && d.err == nil && d.off < len(d.b) {
		m.Secret = d.str(MaxSecretLen, "secret")
	}
	return d.err
}

// Welcome accepts a session.
//
//	session_id    u64
//	heartbeat_ms  u32  send a ping when silent this long
//	offline_ms    u32  the peer is offline when silent this long
//	host_time_ms  i64  host clock, Unix milliseconds
type Welcome struct {
	SessionID   uint64
	HeartbeatMS uint32
	OfflineMS   uint32
	HostTimeMS  int64
}

// FrameType returns FrameWelcome.
func (*Welcome) FrameType() FrameType { return FrameWelcome }

// AppendPayload appends the encoded welcome.
func (m *Welcome) AppendPayload(b []byte) ([]byte, error) {
	e := encoder{b: b, frame: FrameWelcome}
	if m.HeartbeatMS == 0 || m.OfflineMS <= m.HeartbeatMS {
		e.fail("offline_ms", "must exceed a non-zero heartbeat_ms")
	}
	e.u64(m.SessionID)
	e.u32(m.HeartbeatMS)
	e.u32(m.OfflineMS)
	e.u64(uint64(m.HostTimeMS))
	return e.done()
}

// UnmarshalPayload decodes a welcome payload.
func (m *Welcome) UnmarshalPayload(p []byte) error {
	d := decoder{b: p, frame: FrameWelcome}
	m.SessionID = d.u64("session_id")
	m.HeartbeatMS = d.u32("heartbeat_ms")
	m.OfflineMS = d.u32("offline_ms")
	m.HostTimeMS = int64(d.u64("host_time_ms"))
	if d.err == nil && (m.HeartbeatMS == 0 || m.OfflineMS <= m.HeartbeatMS) {
		d.fail("offline_ms", "must exceed a non-zero heartbeat_ms")
	}
	return d.err
}

// Reject refuses a session; the host closes the connection after it.
//
//	reason          u8   RejectReason
//	retry_after_ms  u32  wait at least this long before reconnecting
//	text            str  0..255, for logs
type Reject struct {
	Reason       RejectReason
	RetryAfterMS uint32
	Text         string
}

// FrameType returns FrameReject.
func (*Reject) FrameType() FrameType { return FrameReject }

// AppendPayload appends the encoded reject.
func (m *Reject) AppendPayload(b []byte) ([]byte, error) {
	e := encoder{b: b, frame: FrameReject}
	e.u8(uint8(m.Reason))
	e.u32(m.RetryAfterMS)
	e.str(m.Text, MaxTextLen, "text")
	return e.done()
}

// UnmarshalPayload decodes a reject payload.
func (m *Reject) UnmarshalPayload(p []byte) error {
	d := decoder{b: p, frame: FrameReject}
	m.Reason = RejectReason(d.u8("reason"))
	m.RetryAfterMS = d.u32("retry_after_ms")
	m.Text = d.str(MaxTextLen, "text")
	return d.err
}

// Transaction is one logged controller event.
//
//	seq         u32  transaction serial, > 0, increasing within a boot epoch
//	time_ms     i64  controller clock, Unix milliseconds
//	source_type u8   SourceType
//	source_num  u16
//	tran_type   u8   TranType (1..7)
//	code        u8   code within the type
//	body_len    u8   then body_len bytes:
//	  access:                 card u64, facility u32 (12 bytes)
//	  system/log_over_limit:  lost u32 (4 bytes)
//	  others:                 empty
//
// Receivers ignore body bytes beyond those they know (a newer minor version
// may append).
type Transaction struct {
	Seq        uint32
	TimeMS     int64
	SourceType SourceType
	SourceNum  uint16
	Type       TranType
	Code       uint8
	Card       uint64 // access
	Facility   uint32 // access
	Lost       uint32 // system/log_over_limit
}

// FrameType returns FrameTransaction.
func (*Transaction) FrameType() FrameType { return FrameTransaction }

// AppendPayload appends the encoded transaction.
func (m *Transaction) AppendPayload(b []byte) ([]byte, error) {
	e := encoder{b: b, frame: FrameTransaction}
	if m.Seq == 0 {
		e.fail("seq", "zero")
	}
	if !m.Type.Valid() {
		e.fail("tran_type", m.Type.String())
	}
	e.u32(m.Seq)
	e.u64(uint64(m.TimeMS))
	e.u8(uint8(m.SourceType))
	e.u16(m.SourceNum)
	e.u8(uint8(m.Type))
	e.u8(m.Code)
	switch {
	case m.Type == TranAccess:
		e.u8(12)
		e.u64(m.Card)
		e.u32(m.Facility)
	case m.Type == TranSystem && m.Code == SystemLogOverLimit:
		e.u8(4)
		e.u32(m.Lost)
	default:
		e.u8(0)
	}
	return e.done()
}

// UnmarshalPayload decodes a transaction payload. It does not allocate.
func (m *Transaction) UnmarshalPayload(p []byte) error {
	d := decoder{b: p, frame: FrameTransaction}
	m.Seq = d.u32("seq")
	m.TimeMS = int64(d.u64("time_ms"))
	m.SourceType = SourceType(d.u8("source_type"))
	m.SourceNum = d.u16("source_num")
	m.Type = TranType(d.u8("tran_type"))
	m.Code = d.u8("code")
	n := int(d.u8("body_len"))
	body := decoder{b: d.bytes(n, "body"), frame: FrameTransaction}
	m.Card, m.Facility, m.Lost = 0, 0, 0
	if d.err != nil {
		return d.err
	}
	if m.Seq == 0 {
		d.fail("seq", "zero")
	} else if !m.Type.Valid() {
		d.fail("tran_type", m.Type.String())
	}
	switch {
	case m.Type == TranAccess:
		m.Card = body.u64("card")
		m.Facility = body.u32("facility")
	case m.Type == TranSystem && m.Code == SystemLogOverLimit:
		m.Lost = body.u32("lost")
	}
	if d.err != nil {
		return d.err
	}
	return body.err
}

// TranAck acknowledges every transaction of BootEpoch up to and including
// LastSeq. The host sends it only after each of them is stored durably.
//
//	boot_epoch u32
//	last_seq   u32
type TranAck struct {
	BootEpoch uint32
	LastSeq   uint32
}

// FrameType returns FrameTranAck.
func (*TranAck) FrameType() FrameType { return FrameTranAck }

// AppendPayload appends the encoded ack.
func (m *TranAck) AppendPayload(b []byte) ([]byte, error) {
	e := encoder{b: b, frame: FrameTranAck}
	e.u32(m.BootEpoch)
	e.u32(m.LastSeq)
	return e.done()
}

// UnmarshalPayload decodes an ack payload.
func (m *TranAck) UnmarshalPayload(p []byte) error {
	d := decoder{b: p, frame: FrameTranAck}
	m.BootEpoch = d.u32("boot_epoch")
	m.LastSeq = d.u32("last_seq")
	return d.err
}

// Ping asks the peer for a Pong with the same nonce.
//
//	nonce u64
type Ping struct{ Nonce uint64 }

// FrameType returns FramePing.
func (*Ping) FrameType() FrameType { return FramePing }

// AppendPayload appends the encoded ping.
func (m *Ping) AppendPayload(b []byte) ([]byte, error) {
	e := encoder{b: b, frame: FramePing}
	e.u64(m.Nonce)
	return e.done()
}

// UnmarshalPayload decodes a ping payload.
func (m *Ping) UnmarshalPayload(p []byte) error {
	d := decoder{b: p, frame: FramePing}
	m.Nonce = d.u64("nonce")
	return d.err
}

// Pong answers a Ping.
//
//	nonce u64  the ping's nonce
type Pong struct{ Nonce uint64 }

// FrameType returns FramePong.
func (*Pong) FrameType() FrameType { return FramePong }

// AppendPayload appends the encoded pong.
func (m *Pong) AppendPayload(b []byte) ([]byte, error) {
	e := encoder{b: b, frame: FramePong}
	e.u64(m.Nonce)
	return e.done()
}

// UnmarshalPayload decodes a pong payload.
func (m *Pong) UnmarshalPayload(p []byte) error {
	d := decoder{b: p, frame: FramePong}
	m.Nonce = d.u64("nonce")
	return d.err
}

// Bye closes a session in order; the sender closes the connection after it.
//
//	reason              u8   ByeReason
//	reconnect_after_ms  u32  (host to controller) wait this long, then reconnect
//	text                str  0..255, for logs
type Bye struct {
	Reason           ByeReason
	ReconnectAfterMS uint32
	Text             string
}

// FrameType returns FrameBye.
func (*Bye) FrameType() FrameType { return FrameBye }

// AppendPayload appends the encoded bye.
func (m *Bye) AppendPayload(b []byte) ([]byte, error) {
	e := encoder{b: b, frame: FrameBye}
	e.u8(uint8(m.Reason))
	e.u32(m.ReconnectAfterMS)
	e.str(m.Text, MaxTextLen, "text")
	return e.done()
}

// UnmarshalPayload decodes a bye payload.
func (m *Bye) UnmarshalPayload(p []byte) error {
	d := decoder{b: p, frame: FrameBye}
	m.Reason = ByeReason(d.u8("reason"))
	m.ReconnectAfterMS = d.u32("reconnect_after_ms")
	m.Text = d.str(MaxTextLen, "text")
	return d.err
}
