-- Schema 1 to 2: an index for the unacknowledged messages of a peer, read at every
-- reconnection and acknowledgement.  store.py runs this in one transaction with the
-- version bump, so it holds no BEGIN or COMMIT of its own.
CREATE INDEX outbox_unacked ON outbox (peer, acked, seq);
