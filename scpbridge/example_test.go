package scpbridge_test

import (
	"bytes"
	"fmt"

	"github.com/scpgate/scpgate/scpbridge"
)

// Encode an access-granted transaction as a complete frame.
func ExampleAppendFrame() {
	tx := &scpbridge.Transaction{
		Seq:        1201,
		TimeMS:     1767225600123, // 2026-01-01T00:00:00.123Z
		SourceType: scpbridge.SourceReader,
		SourceNum:  1,
		Type:       scpbridge.TranAccess,
		Code:       scpbridge.AccessGranted,
		Card:       123456789,
		Facility:   42,
	}
	frame, err := scpbridge.AppendFrame(nil, tx)
	if err != nil {
		panic(err)
	}
	fmt.Printf("header  % x\n", frame[:scpbridge.HeaderLen])
	fmt.Printf("payload % x\n", frame[scpbridge.HeaderLen:])
	// Output:
	// header  53 43 10 10 00 00 00 1e
	// payload 00 00 04 b1 00 00 01 9b 76 da a8 7b 02 00 01 01 01 0c 00 00 00 00 07 5b cd 15 00 00 00 2a
}

// Read frames from a stream and decode transactions into one reused value,
// as the host does.
func ExampleReader() {
	var stream []byte
	for seq := uint32(1); seq <= 3; seq++ {
		stream, _ = scpbridge.AppendFrame(stream, &scpbridge.Transaction{
			Seq: seq, Type: scpbridge.TranDoor, Code: scpbridge.DoorOpened, SourceType: scpbridge.SourceDoor, SourceNum: 2,
		})
	}
	r := scpbridge.NewReader(bytes.NewReader(stream), 0)
	var tx scpbridge.Transaction
	for {
		h, payload, err := r.Next()
		if err != nil {
			fmt.Println(err)
			break
		}
		if h.Type != scpbridge.FrameTransaction {
			continue
		}
		if err := tx.UnmarshalPayload(payload); err != nil {
			fmt.Println(err)
			break
		}
		fmt.Printf("seq %d %s %d: %s/%s\n", tx.Seq, tx.SourceType, tx.SourceNum, tx.Type, scpbridge.CodeName(tx.Type, tx.Code))
	}
	// Output:
	// seq 1 door 2: door/opened
	// seq 2 door 2: door/opened
	// seq 3 door 2: door/opened
	// EOF
}
