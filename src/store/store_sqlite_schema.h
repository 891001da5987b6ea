/*
 * SQLite schema migrations, applied in order at store_open inside one
 * transaction; schema_version holds how many have run. Append, never edit.
 */
#ifndef CMPCA_STORE_SQLITE_SCHEMA_H
#define CMPCA_STORE_SQLITE_SCHEMA_H

static const char *const store_sqlite_migrations[] = {
    /* 1: initial schema */
    "CREATE TABLE ca ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  cert BLOB NOT NULL,"
    "  chain BLOB NOT NULL,"            /* concatenated DER certificates */
    "  key_ref TEXT NOT NULL,"
    "  signer_cert BLOB,"
    "  signer_key_ref TEXT,"
    "  created INTEGER NOT NULL);"
    "CREATE TABLE vendor ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  certs BLOB NOT NULL,"            /* concatenated DER certificates */
    "  created INTEGER NOT NULL);"
    "CREATE TABLE device ("
    "  id INTEGER PRIMARY KEY,"
    "  vendor_id INTEGER NOT NULL REFERENCES vendor(id) ON DELETE CASCADE,"
    "  identifier TEXT NOT NULL,"
    "  state INTEGER NOT NULL CHECK (state BETWEEN 0 AND 4),"
    "  cert_id INTEGER,"
    "  created INTEGER NOT NULL,"
    "  updated INTEGER NOT NULL,"
    "  UNIQUE (vendor_id, identifier));"
    "CREATE TABLE cert ("
    "  id INTEGER PRIMARY KEY,"
    "  ca_id INTEGER NOT NULL REFERENCES ca(id),"
    "  serial BLOB NOT NULL,"
    "  subject TEXT NOT NULL,"
    "  not_before INTEGER NOT NULL,"
    "  not_after INTEGER NOT NULL,"
    "  der BLOB NOT NULL,"
    "  sha256 BLOB NOT NULL,"
    "  status INTEGER NOT NULL CHECK (status IN (0, 1)),"
    "  revoked_at INTEGER,"
    "  reason INTEGER,"
    "  device_id INTEGER REFERENCES device(id) ON DELETE SET NULL,"
    "  profile TEXT,"
    "  created INTEGER NOT NULL,"
    "  UNIQUE (ca_id, serial));"
    "CREATE UNIQUE INDEX cert_sha256 ON cert(sha256);"
    "CREATE INDEX cert_device ON cert(device_id);"
    "CREATE INDEX cert_revoked ON cert(ca_id, serial) WHERE status = 1;"
    "CREATE TABLE ra ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  cert BLOB NOT NULL,"
    "  sha256 BLOB NOT NULL UNIQUE,"
    "  created INTEGER NOT NULL);"
    "CREATE TABLE ra_alias ("
    "  ra_id INTEGER NOT NULL REFERENCES ra(id) ON DELETE CASCADE,"
    "  alias TEXT NOT NULL,"
    "  PRIMARY KEY (ra_id, alias)) WITHOUT ROWID;"
    "CREATE TABLE cmp_txn ("
    "  tid BLOB PRIMARY KEY,"
    "  alias TEXT,"
    "  type INTEGER NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  cert_req_id INTEGER NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  deadline INTEGER NOT NULL,"
    "  updated INTEGER NOT NULL,"
    "  requester BLOB,"
    "  sender_nonce BLOB,"
    "  cert_id INTEGER,"
    "  old_cert_id INTEGER,"
    "  device_id INTEGER) WITHOUT ROWID;"
    "CREATE INDEX cmp_txn_waiting ON cmp_txn(deadline) WHERE state = 0;"
    "CREATE INDEX cmp_txn_updated ON cmp_txn(updated);"
    "CREATE TABLE crl_counter ("
    "  ca_id INTEGER PRIMARY KEY REFERENCES ca(id),"
    "  number INTEGER NOT NULL);"
    "CREATE TABLE crl ("
    "  ca_id INTEGER PRIMARY KEY REFERENCES ca(id),"
    "  number INTEGER NOT NULL,"
    "  this_update INTEGER NOT NULL,"
    "  next_update INTEGER NOT NULL,"
    "  der BLOB NOT NULL);"
    "CREATE TABLE audit ("
    "  seq INTEGER PRIMARY KEY,"
    "  time INTEGER NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  action TEXT NOT NULL,"
    "  object TEXT,"
    "  details TEXT,"
    "  hash BLOB NOT NULL);"
    "CREATE TABLE audit_head ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  seq INTEGER NOT NULL,"
    "  hash BLOB NOT NULL);",
    /* 2: find a device's unconfirmed enrollment (a lost ip, a new ir) */
    ("CREATE INDEX cmp_txn_device_waiting ON cmp_txn(device_id)"
     " WHERE state = 0;"),
    /* 3: certificates are found by (ca_id, serial), which also stands for
     * the DER; a second random-keyed index only cost a page write per
     * issuance */
    "DROP INDEX cert_sha256;",
    /* 4: the RA registry: profiles, operations (enum store_ra_op bits;
     * existing RAs keep every operation), raVerified, disabled */
    "ALTER TABLE ra ADD COLUMN ops INTEGER NOT NULL DEFAULT 31;"
    "ALTER TABLE ra ADD COLUMN ra_verified INTEGER NOT NULL DEFAULT 0"
    "  CHECK (ra_verified IN (0, 1));"
    "ALTER TABLE ra ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0"
    "  CHECK (disabled IN (0, 1));"
    "ALTER TABLE ra ADD COLUMN updated INTEGER NOT NULL DEFAULT 0;"
    "UPDATE ra SET updated = created;"
    "CREATE TABLE ra_profile ("
    "  ra_id INTEGER NOT NULL REFERENCES ra(id) ON DELETE CASCADE,"
    "  profile TEXT NOT NULL,"
    "  PRIMARY KEY (ra_id, profile)) WITHOUT ROWID;",
    /* 5: revocation services and the device's life: the vendor
     * certificate an operator certificate was issued against, valid
     * certificates by expiry (the expiry gauge and `cert list
     * --expiring-within`), disabled vendors, vendor CRLs */
    ("ALTER TABLE cert ADD COLUMN vendor_sha256 BLOB;"
     "ALTER TABLE cert ADD COLUMN vendor_serial BLOB;"
     "CREATE INDEX cert_vendor ON cert(vendor_sha256)"
     " WHERE vendor_sha256 IS NOT NULL;"
     "CREATE INDEX cert_valid_expiry ON cert(not_after) WHERE status = 0;"
     "ALTER TABLE vendor ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;"
     "CREATE TABLE vendor_crl ("
     "  vendor_id INTEGER NOT NULL REFERENCES vendor(id) ON DELETE CASCADE,"
     "  issuer_sha256 BLOB NOT NULL,"
     "  this_update INTEGER NOT NULL,"
     "  next_update INTEGER NOT NULL,"
     "  fetched INTEGER NOT NULL,"
     "  source TEXT,"
     "  der BLOB NOT NULL,"
     "  PRIMARY KEY (vendor_id, issuer_sha256));"),
    /* 6: the request's senderNonce (a certConf must not reuse it) */
    "ALTER TABLE cmp_txn ADD COLUMN req_nonce BLOB;",
    /* 7: per-requester enrollment limits count a requester's recent and
     * unconfirmed transactions */
    "CREATE INDEX IF NOT EXISTS cmp_txn_requester ON cmp_txn(requester, created);",
    /* 8: root CA key rollovers: the new root and the link certificates
     * (genm rootCaKeyUpdate, RFC 9483 4.3.2) */
    ("CREATE TABLE ca_rollover ("
     "  id INTEGER PRIMARY KEY,"
     "  ca_id INTEGER NOT NULL REFERENCES ca(id),"
     "  old_sha256 BLOB NOT NULL,"
     "  new_sha256 BLOB NOT NULL,"
     "  new_with_new BLOB NOT NULL,"
     "  new_with_old BLOB NOT NULL,"
     "  old_with_new BLOB NOT NULL,"
     "  created INTEGER NOT NULL);"),
    /* 9: mac mode: one shared secret per device, found by its reference
     * (senderKID), sealed with the key-encryption key (AES-256-GCM:
     * nonce || ciphertext || tag); wrong MACs counted, locked, consumed */
    ("CREATE TABLE device_secret ("
     "  device_id INTEGER PRIMARY KEY REFERENCES device(id) ON DELETE CASCADE,"
     "  ref TEXT NOT NULL UNIQUE,"
     "  sealed BLOB NOT NULL,"
     "  failures INTEGER NOT NULL DEFAULT 0,"
     "  locked INTEGER NOT NULL DEFAULT 0 CHECK (locked IN (0, 1)),"
     "  consumed INTEGER NOT NULL DEFAULT 0 CHECK (consumed IN (0, 1)),"
     "  created INTEGER NOT NULL,"
     "  updated INTEGER NOT NULL);"),
    /* 10: delayed delivery: requests awaiting an operator's approval (the
     * request as received, enough to issue it later exactly as asked),
     * their decision, and undecided ones by expiry for the sweeper */
    ("CREATE TABLE cmp_pending ("
     "  tid BLOB PRIMARY KEY,"
     "  alias TEXT NOT NULL,"
     "  type INTEGER NOT NULL,"
     "  state INTEGER NOT NULL,"
     "  requester TEXT,"
     "  device_id INTEGER,"
     "  device TEXT,"
     "  profile TEXT,"
     "  subject TEXT,"
     "  request BLOB NOT NULL,"
     "  vendor_cert BLOB,"
     "  created INTEGER NOT NULL,"
     "  expires INTEGER NOT NULL,"
     "  updated INTEGER NOT NULL,"
     "  decided_by TEXT,"
     "  decided_at INTEGER,"
     "  reason TEXT);"
     "CREATE INDEX cmp_pending_expires ON cmp_pending(expires)"
     " WHERE state = 0;"
     "CREATE INDEX cmp_pending_updated ON cmp_pending(updated);"),
    /* 11: stored replies: a byte-identical repeat of a request gets the
     * same answer (an RA's retried forward), and an RA in upstream mode
     * records each message it relayed */
    ("CREATE TABLE cmp_txn_reply ("
     "  req_sha256 BLOB PRIMARY KEY,"
     "  alias TEXT NOT NULL,"
     "  tid BLOB,"
     "  upstream INTEGER NOT NULL DEFAULT 0,"
     "  http INTEGER NOT NULL,"
     "  created INTEGER NOT NULL,"
     "  reply BLOB NOT NULL) WITHOUT ROWID;"
     "CREATE INDEX cmp_txn_reply_created ON cmp_txn_reply(created);"),
    /* 12: held requests decided but never fetched, for the sweeper that
     * closes them approval_timeout after the decision */
    ("CREATE INDEX cmp_pending_decided ON cmp_pending(decided_at)"
     " WHERE state IN (1,2);"),
};

#endif
