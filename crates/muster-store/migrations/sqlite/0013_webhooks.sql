-- Webhooks (issue 6 §6).

-- An organization's endpoints. The signing secret is sealed with the server
-- key (it must be read back to sign); a rotated-out secret keeps signing
-- beside the new one until `previous_until`, so receivers can switch over.
CREATE TABLE webhook_endpoints (
    id                     TEXT PRIMARY KEY,
    org_id                 TEXT NOT NULL REFERENCES orgs(id),
    url                    TEXT NOT NULL,
    description            TEXT NOT NULL,
    event_types            TEXT NOT NULL,
    secret_sealed          TEXT NOT NULL,
    previous_secret_sealed TEXT,
    previous_until         BIGINT,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL,
    disabled_at            BIGINT,
    disabled_reason        TEXT
);
CREATE INDEX webhook_endpoints_org ON webhook_endpoints (org_id);

-- One row per subscribed pattern, as a LIKE pattern (`user.%`, `%`), so the
-- fan-out below matches in SQL.
CREATE TABLE webhook_subscriptions (
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    pattern     TEXT NOT NULL,
    PRIMARY KEY (endpoint_id, pattern)
);

-- The outbox: one row per event and subscribed endpoint, written by the
-- trigger below in the transaction that writes the event, whichever path
-- wrote it. The event's id is the message's `webhook-id`.
CREATE TABLE webhook_deliveries (
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    event_id        TEXT NOT NULL,
    org_id          TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_attempt_at BIGINT,
    last_status     BIGINT,
    last_error      TEXT,
    delivered_at    BIGINT,
    PRIMARY KEY (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (endpoint_id, event_id) WHERE status = 'pending';

-- The delivery log: every attempt, automatic or manual.
CREATE TABLE webhook_attempts (
    endpoint_id TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    attempt     BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    manual      BIGINT NOT NULL,
    http_status BIGINT,
    error       TEXT,
    duration_ms BIGINT NOT NULL,
    PRIMARY KEY (endpoint_id, event_id, attempt),
    FOREIGN KEY (endpoint_id, event_id) REFERENCES webhook_deliveries(endpoint_id, event_id) ON DELETE CASCADE
);

CREATE TRIGGER audit_events_webhooks AFTER INSERT ON audit_events
WHEN EXISTS (SELECT 1 FROM webhook_endpoints WHERE org_id = NEW.org_id AND disabled_at IS NULL)
BEGIN
    INSERT INTO webhook_deliveries (endpoint_id, event_id, org_id, event_type, created_at, status, attempts, next_attempt_at)
    SELECT w.id, NEW.id, NEW.org_id, NEW.action, NEW.occurred_at, 'pending', 0, NEW.occurred_at
    FROM webhook_endpoints w
    WHERE w.org_id = NEW.org_id AND w.disabled_at IS NULL
      AND EXISTS (SELECT 1 FROM webhook_subscriptions s
                  WHERE s.endpoint_id = w.id AND NEW.action LIKE s.pattern ESCAPE '\');
END;
