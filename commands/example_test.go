package commands_test

import (
	"fmt"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/commands"
)

func ExampleParseID() {
	id := commands.ID("SCP-0001", 42)
	serial, seq, err := commands.ParseID(id)
	fmt.Println(id, serial, seq, err)
	// Output: SCP-0001.42 SCP-0001 42 <nil>
}

func ExampleValidate() {
	door := uint16(3)
	err := commands.Validate(scpgate.CmdMomentaryUnlock, scpgate.CommandParams{Door: &door})
	fmt.Println(err)
	// Output: momentary_unlock: param seconds: required, 1 to 3600
}
