-- Domains an organization claims (issue 7 §6). A claim becomes verified
-- when the domain's DNS holds `muster-verification=<token>` as a TXT
-- record; a verified domain belongs to one organization only.
CREATE TABLE org_domains (
    org_id       TEXT NOT NULL REFERENCES orgs(id),
    domain       TEXT NOT NULL,
    token        TEXT NOT NULL,
    verified_at  BIGINT,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (org_id, domain)
);
CREATE UNIQUE INDEX org_domains_verified ON org_domains (domain) WHERE verified_at IS NOT NULL;
