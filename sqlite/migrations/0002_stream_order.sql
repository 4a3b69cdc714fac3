-- Order state by what scpgate assigns, not by the controller's boot epoch
-- or the drivers' clocks: the SCP_EVENTS sequence of the event that set a
-- value (0 when unknown) and, for presence, the scp_sessions revision of
-- its session (0 when unknown).
ALTER TABLE point_state ADD COLUMN stream_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE controllers ADD COLUMN p_stream INTEGER NOT NULL DEFAULT 0;
ALTER TABLE controllers ADD COLUMN p_rev INTEGER NOT NULL DEFAULT 0;
ALTER TABLE controllers ADD COLUMN i_stream INTEGER NOT NULL DEFAULT 0;
ALTER TABLE controllers ADD COLUMN i_rev INTEGER NOT NULL DEFAULT 0;
