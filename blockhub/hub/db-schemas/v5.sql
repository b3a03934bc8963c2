-- The hub's database at schema version 5, in full.  A new database is made from the
-- newest of these files; an older one is brought forward by upgrade-to-vN.sql, one
-- step at a time (see store.py).  A version's file never changes once released.
CREATE TABLE version (version INTEGER NOT NULL);

CREATE TABLE approved_keys (id TEXT PRIMARY KEY, added_at INTEGER NOT NULL);
CREATE TABLE approved_ranges (cidr TEXT PRIMARY KEY, added_at INTEGER NOT NULL);
CREATE TABLE blocked_keys (id TEXT PRIMARY KEY, added_at INTEGER NOT NULL);

-- Nonces of handshakes already seen, kept past the freshness window, to refuse replays.
CREATE TABLE seen_nonces (nonce TEXT PRIMARY KEY, seen_at INTEGER NOT NULL);

-- One row per handshake request; direction 'out' (we asked) or 'in' (we were asked).
CREATE TABLE requests (
    direction TEXT NOT NULL,
    peer TEXT NOT NULL,
    state TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    endpoint TEXT,              -- the other side's endpoint, when it gave one
    observed TEXT,              -- the address the gateway saw it connect from ('in')
    nonce TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    how TEXT,                   -- what an 'in' request was accepted on: auto, auto-range,
                                -- operator, invite (NULL until accepted)
    invite TEXT,                -- an 'out' request's invite code, to sign it again
    PRIMARY KEY (direction, peer)
);

-- Established peerings.  'dialer' is 1 when this hub is the side that reconnects;
-- 'path' is how the link was last made: 'direct', or 'relayed' (a circuit through the
-- gateway, which the side that does not reconnect keeps asking for while it is down).
CREATE TABLE peers (
    id TEXT PRIMARY KEY,
    address TEXT,
    dialer INTEGER NOT NULL,
    established_at INTEGER NOT NULL,
    path TEXT NOT NULL DEFAULT 'direct'
);

-- Messages we send: kept until the peer acknowledges them, and after, for the seq.
CREATE TABLE outbox (
    peer TEXT NOT NULL,
    seq INTEGER NOT NULL,
    text TEXT NOT NULL,
    at INTEGER NOT NULL,
    acked INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (peer, seq)
);
CREATE INDEX outbox_unacked ON outbox (peer, acked, seq);

-- Messages received, in arrival order; (peer, seq) drops duplicates.
CREATE TABLE inbox (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    peer TEXT NOT NULL,
    seq INTEGER NOT NULL,
    text TEXT NOT NULL,
    at INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    UNIQUE (peer, seq)
);

-- The newest 'issued' of a signed gateway record taken, per gateway key (no rollback).
CREATE TABLE gateway_issued (key TEXT PRIMARY KEY, issued INTEGER NOT NULL);

-- What an archive hub saw: every presence change with its signed HubInfo.
CREATE TABLE archive (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    gateway TEXT,
    event TEXT NOT NULL,
    hub TEXT NOT NULL,
    hubinfo TEXT
);

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
