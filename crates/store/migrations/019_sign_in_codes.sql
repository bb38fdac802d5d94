-- One-time sign-in codes sent by email or SMS. Only a keyed hash of each code is kept; the code
-- itself waits in `pending_code` just until its message is sent, then is forgotten. A code
-- works once, for ten minutes, and dies after five wrong tries.
CREATE TABLE sign_in_codes (
    id             TEXT PRIMARY KEY,
    channel        TEXT NOT NULL CHECK (channel IN ('email', 'sms')),
    destination    TEXT NOT NULL,
    code_hash      TEXT NOT NULL,
    pending_code   TEXT,
    attempts       BIGINT NOT NULL DEFAULT 0,
    client_address TEXT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT,
    created_at     BIGINT NOT NULL
);
CREATE INDEX sign_in_codes_by_destination ON sign_in_codes (channel, destination, created_at);
CREATE INDEX sign_in_codes_by_address ON sign_in_codes (client_address, created_at);
