-- Responses API answers kept for GET /v1/responses/{id} and previous_response_id, until they expire.
CREATE TABLE responses (
    id              TEXT PRIMARY KEY,
    payer           TEXT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    response        TEXT NOT NULL,
    conversation    TEXT NOT NULL
);

CREATE INDEX responses_expires_at ON responses (expires_at);
