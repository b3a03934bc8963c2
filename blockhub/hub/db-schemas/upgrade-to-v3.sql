-- Schema 2 to 3: what an incoming request was accepted on (NULL for a request accepted
-- before: its basis is unknown), and the newest 'issued' of a gateway record taken, per
-- gateway key.  store.py runs this in one transaction with the version bump, so it holds
-- no BEGIN or COMMIT of its own.
ALTER TABLE requests ADD COLUMN how TEXT;   -- what an 'in' request was accepted on: auto,
                                            -- auto-range, operator (NULL until accepted)
CREATE TABLE gateway_issued (key TEXT PRIMARY KEY, issued INTEGER NOT NULL);
