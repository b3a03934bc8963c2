-- Schema 4 to 5: invites (issue 18).  store.py runs this in one transaction with the
-- version bump, so it holds no BEGIN or COMMIT.
ALTER TABLE requests ADD COLUMN invite TEXT;
-- Invites this hub made: the invite key's public half only (the secret is in the code).
-- 'uses' counts the uses left; a revoked invite keeps its row, for 'invite list'.
CREATE TABLE invites (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,   -- base64 of the invite's Ed25519 public key
    note TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    uses INTEGER NOT NULL,
    revoked_at INTEGER
);

-- Each use of an invite, recorded before the acceptance it leads to goes out.
CREATE TABLE invite_uses (
    invite TEXT NOT NULL,
    peer TEXT NOT NULL,
    nonce TEXT NOT NULL UNIQUE,
    at INTEGER NOT NULL
);
