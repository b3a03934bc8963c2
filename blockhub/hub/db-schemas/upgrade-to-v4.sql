-- Schema 3 to 4: how each peering's link was last made (relay circuits).  store.py runs
-- this in one transaction with the version bump, so it holds no BEGIN or COMMIT.
ALTER TABLE peers ADD COLUMN path TEXT NOT NULL DEFAULT 'direct';
