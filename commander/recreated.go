package commander

import (
	"context"
	"time"

	"github.com/scpgate/scpgate/commands"
)

// currentRecord returns rec, the final record of the command at seq,
// unless a different command is stored at seq now: after SCP_COMMANDS was
// re-created its sequences start again, and a record of the old stream
// must not answer for a new command with the same id. A completed command
// is deleted from the stream, so this costs one lookup that finds
// nothing.
func (s *Service) currentRecord(ctx context.Context, serial string, seq uint64, rec commands.Record) (commands.Record, error) {
	cmd, found, err := s.storedCommand(ctx, serial, seq)
	if err != nil || !found {
		return rec, nil // the record stands; a failed lookup changes nothing
	}
	if cmd.Created.Equal(rec.Created) && cmd.Type == rec.Type {
		return rec, nil // its driver has not deleted it yet
	}
	return commands.QueuedRecord(serial, seq, cmd, time.Now()), nil
}
