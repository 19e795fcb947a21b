//! Versioned schema migrations, applied in order at open. `PRAGMA user_version`
//! holds how many have run. A migration is never edited once released: add one.

pub const MIGRATIONS: &[&str] = &[
    // 1: the foundation.
    r#"
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE domains (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created INTEGER NOT NULL
    );
    CREATE TABLE accounts (
        id INTEGER PRIMARY KEY,
        address TEXT NOT NULL UNIQUE,
        domain_id INTEGER NOT NULL REFERENCES domains(id),
        password_hash TEXT NOT NULL,
        scram_sha256 TEXT NOT NULL,
        created INTEGER NOT NULL
    );
    CREATE INDEX accounts_domain ON accounts(domain_id);
    CREATE TABLE aliases (
        id INTEGER PRIMARY KEY,
        address TEXT NOT NULL UNIQUE,
        domain_id INTEGER NOT NULL REFERENCES domains(id),
        targets TEXT NOT NULL,
        created INTEGER NOT NULL
    );
    CREATE INDEX aliases_domain ON aliases(domain_id);
    CREATE TABLE mailboxes (
        id INTEGER PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        special_use TEXT,
        uid_validity INTEGER NOT NULL,
        uid_next INTEGER NOT NULL DEFAULT 1,
        highest_modseq INTEGER NOT NULL DEFAULT 1,
        subscribed INTEGER NOT NULL DEFAULT 1,
        UNIQUE (account_id, name)
    );
    CREATE TABLE blobs (
        id INTEGER PRIMARY KEY,
        data BLOB NOT NULL
    );
    CREATE TABLE mailbox_messages (
        mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
        uid INTEGER NOT NULL,
        blob_id INTEGER NOT NULL REFERENCES blobs(id),
        prefix BLOB NOT NULL,
        size INTEGER NOT NULL,
        internal_date INTEGER NOT NULL,
        modseq INTEGER NOT NULL,
        flags TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (mailbox_id, uid)
    ) WITHOUT ROWID;
    CREATE INDEX mailbox_messages_blob ON mailbox_messages(blob_id);
    CREATE INDEX mailbox_messages_modseq ON mailbox_messages(mailbox_id, modseq);
    CREATE TABLE queue_messages (
        id INTEGER PRIMARY KEY,
        blob_id INTEGER NOT NULL REFERENCES blobs(id),
        sender TEXT NOT NULL,
        envid TEXT,
        ret TEXT,
        smtputf8 INTEGER NOT NULL,
        eight_bit INTEGER NOT NULL,
        created INTEGER NOT NULL
    );
    CREATE INDEX queue_messages_blob ON queue_messages(blob_id);
    CREATE TABLE queue_recipients (
        id INTEGER PRIMARY KEY,
        queue_id INTEGER NOT NULL REFERENCES queue_messages(id) ON DELETE CASCADE,
        address TEXT NOT NULL,
        domain TEXT NOT NULL,
        orcpt TEXT,
        notify TEXT,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt INTEGER NOT NULL,
        last_reply TEXT,
        lease_until INTEGER
    );
    CREATE INDEX queue_recipients_due ON queue_recipients(state, next_attempt);
    CREATE INDEX queue_recipients_queue ON queue_recipients(queue_id);
    "#,
    // 2: IMAP. Expunged UIDs with their MODSEQ (RFC 7162 §3.2.5.1: VANISHED for
    // QRESYNC clients; other sessions learn of expunges from it too), and where
    // \Recent starts for IMAP4rev1 clients (RFC 3501 §2.3.2).
    r#"
    CREATE TABLE expunged (
        mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
        uid INTEGER NOT NULL,
        modseq INTEGER NOT NULL,
        PRIMARY KEY (mailbox_id, uid)
    ) WITHOUT ROWID;
    CREATE INDEX expunged_modseq ON expunged(mailbox_id, modseq);
    ALTER TABLE mailboxes ADD COLUMN first_recent_uid INTEGER NOT NULL DEFAULT 1;
    "#,
    // 3: outbound delivery. Every attempt is kept for `tern queue show`; each
    // recipient keeps the status and remote MTA of its last answer (RFC 3464).
    r#"
    CREATE TABLE queue_attempts (
        id INTEGER PRIMARY KEY,
        queue_id INTEGER NOT NULL REFERENCES queue_messages(id) ON DELETE CASCADE,
        at INTEGER NOT NULL,
        recipients TEXT NOT NULL,
        mx TEXT,
        ip TEXT,
        tls TEXT,
        reply TEXT NOT NULL
    );
    CREATE INDEX queue_attempts_queue ON queue_attempts(queue_id);
    ALTER TABLE queue_recipients ADD COLUMN status TEXT;
    ALTER TABLE queue_recipients ADD COLUMN remote_mta TEXT;
    "#,
    // 4: a recipient's sender was warned of the delay (RFC 3464 "delayed"), once.
    r#"
    ALTER TABLE queue_recipients ADD COLUMN warned INTEGER NOT NULL DEFAULT 0;
    "#,
    // 5: DKIM signing keys (RFC 6376), several per domain: one per algorithm and
    // rotation; a key signs from `active_from` on.
    r#"
    CREATE TABLE dkim_keys (
        id INTEGER PRIMARY KEY,
        domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
        selector TEXT NOT NULL,
        algorithm TEXT NOT NULL,
        private_key BLOB NOT NULL,
        public_key TEXT NOT NULL,
        created INTEGER NOT NULL,
        active_from INTEGER NOT NULL,
        UNIQUE (domain_id, selector)
    );
    "#,
    // 6: installation-wide values (the SRS key), set once and shared by every
    // process using the store.
    r#"
    CREATE TABLE settings (
        name TEXT PRIMARY KEY,
        value BLOB NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 7: DMARC (RFC 7489 §7): the evaluations made here, kept until the
    // aggregate report to their domain is sent; reports received from others.
    r#"
    CREATE TABLE dmarc_evaluations (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        domain TEXT NOT NULL,
        rua TEXT NOT NULL,
        policy TEXT NOT NULL,
        row TEXT NOT NULL
    );
    CREATE INDEX dmarc_evaluations_at ON dmarc_evaluations(at);
    CREATE TABLE dmarc_reports (
        id INTEGER PRIMARY KEY,
        received_at INTEGER NOT NULL,
        org TEXT NOT NULL,
        report_id TEXT NOT NULL,
        domain TEXT NOT NULL,
        begin INTEGER NOT NULL,
        end INTEGER NOT NULL,
        messages INTEGER NOT NULL,
        failed INTEGER NOT NULL,
        document BLOB NOT NULL,
        UNIQUE (org, report_id)
    );
    "#,
    // 8: what senders ask of the queue: FUTURERELEASE (RFC 4865) holds a
    // message until release_at; DELIVERBY (RFC 2852) sets a deadline;
    // MT-PRIORITY (RFC 6710), copied to each recipient so that claims can
    // take the highest priority first through the index.
    r#"
    ALTER TABLE queue_messages ADD COLUMN release_at INTEGER;
    ALTER TABLE queue_messages ADD COLUMN deliver_by INTEGER;
    ALTER TABLE queue_messages ADD COLUMN by_mode TEXT;
    ALTER TABLE queue_messages ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE queue_recipients ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX queue_recipients_priority ON queue_recipients(state, priority, next_attempt);
    "#,
    // 9: spam defences. Greylisting triplets and the client networks that
    // passed (RFC 6647); Bayesian token counts per owner (0: shared) with the
    // messages each owner trained; each account's sending, an hour a row,
    // and the domains it has sent to (rate limits, the compromised-account
    // hold); held accounts, and who submitted each queued message.
    r#"
    CREATE TABLE greylist (
        key TEXT PRIMARY KEY,
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        passed_at INTEGER,
        attempts INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX greylist_last_seen ON greylist(last_seen);
    CREATE TABLE greylist_clients (
        network TEXT PRIMARY KEY,
        passes INTEGER NOT NULL,
        last_pass INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE spam_tokens (
        owner INTEGER NOT NULL,
        hash INTEGER NOT NULL,
        spam INTEGER NOT NULL,
        ham INTEGER NOT NULL,
        seen INTEGER NOT NULL,
        PRIMARY KEY (owner, hash)
    ) WITHOUT ROWID;
    CREATE TABLE spam_totals (
        owner INTEGER PRIMARY KEY,
        spam INTEGER NOT NULL,
        ham INTEGER NOT NULL
    );
    CREATE TABLE spam_trained (
        owner INTEGER NOT NULL,
        digest BLOB NOT NULL,
        spam INTEGER NOT NULL,
        tokens BLOB NOT NULL,
        PRIMARY KEY (owner, digest)
    ) WITHOUT ROWID;
    CREATE TABLE sending (
        account TEXT NOT NULL,
        hour INTEGER NOT NULL,
        messages INTEGER NOT NULL DEFAULT 0,
        recipients INTEGER NOT NULL DEFAULT 0,
        new_domains INTEGER NOT NULL DEFAULT 0,
        bounces INTEGER NOT NULL DEFAULT 0,
        spam INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (account, hour)
    ) WITHOUT ROWID;
    CREATE TABLE sent_domains (
        account TEXT NOT NULL,
        domain TEXT NOT NULL,
        first_sent INTEGER NOT NULL,
        PRIMARY KEY (account, domain)
    ) WITHOUT ROWID;
    ALTER TABLE accounts ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE queue_messages ADD COLUMN submitter TEXT;
    CREATE INDEX queue_messages_submitter ON queue_messages(submitter);
    "#,
    // 10: Sieve (RFC 5228, RFC 5804): each account's scripts, one active at
    // most; the ids scripts track (RFC 7352 duplicates, RFC 5230 vacation
    // responses) until they expire.
    r#"
    CREATE TABLE sieve_scripts (
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        script TEXT NOT NULL,
        active INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (account_id, name)
    ) WITHOUT ROWID;
    CREATE TABLE sieve_tracking (
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        id TEXT NOT NULL,
        expires INTEGER NOT NULL,
        PRIMARY KEY (account_id, id)
    );
    CREATE INDEX sieve_tracking_expires ON sieve_tracking(expires);
    "#,
    // 11: the search index (IMAP SEARCH, SORT, THREAD; JMAP queries later),
    // one row per stored message content, written with it: the header
    // fields asked about, decoded once, a thread id, and the text for
    // full-text search in an FTS5 trigram table (substring matching, case
    // folded). Content that leaves the store takes its index with it.
    r#"
    CREATE TABLE message_index (
        blob_id INTEGER PRIMARY KEY REFERENCES blobs(id) ON DELETE CASCADE,
        sent INTEGER,
        sent_day INTEGER,
        subject TEXT NOT NULL,
        base_subject TEXT NOT NULL,
        reply INTEGER NOT NULL,
        from_key TEXT NOT NULL,
        to_key TEXT NOT NULL,
        cc_key TEXT NOT NULL,
        message_id TEXT,
        in_reply_to TEXT NOT NULL,
        refs TEXT NOT NULL,
        preview TEXT NOT NULL,
        thread_id INTEGER NOT NULL
    );
    CREATE INDEX message_index_message_id ON message_index(message_id);
    CREATE VIRTUAL TABLE message_text USING fts5(subject, hfrom, hto, hcc, hbcc, body, tokenize = 'trigram');
    CREATE TRIGGER blobs_unindex AFTER DELETE ON blobs BEGIN
        DELETE FROM message_text WHERE rowid = old.id;
    END;
    "#,
    // 12: quotas (RFC 9208): an account's limits on octets and messages
    // (NULL: none); the time each message was put in its mailbox (RFC 8514
    // SAVEDATE; older rows take their internal date).
    r#"
    ALTER TABLE accounts ADD COLUMN quota_storage INTEGER;
    ALTER TABLE accounts ADD COLUMN quota_messages INTEGER;
    ALTER TABLE mailbox_messages ADD COLUMN saved_at INTEGER NOT NULL DEFAULT 0;
    UPDATE mailbox_messages SET saved_at = internal_date;
    "#,
    // 13: a blob id is never handed out twice (it is the EMAILID of RFC
    // 8474 §5.1 and JMAP's Email id, which must never name another
    // message): the highest id ever deleted is remembered, and new blobs
    // take the next id above it and above every live one.
    r#"
    CREATE TABLE blob_floor (id INTEGER NOT NULL);
    INSERT INTO blob_floor VALUES ((SELECT coalesce(max(id), 0) FROM blobs));
    CREATE TRIGGER blobs_floor AFTER DELETE ON blobs BEGIN
        UPDATE blob_floor SET id = max(id, old.id);
    END;
    "#,
    // 14: annotations clients keep on a mailbox or on the server (RFC 5464
    // METADATA), per account; a mailbox's go with it.
    r#"
    CREATE TABLE metadata (
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        mailbox_id INTEGER REFERENCES mailboxes(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        value BLOB NOT NULL
    );
    CREATE UNIQUE INDEX metadata_entry ON metadata(account_id, ifnull(mailbox_id, 0), name);
    "#,
    // 15: shared mailboxes (RFC 4314 ACL): the rights an owner granted
    // another account (or `anyone`) on one of their mailboxes.
    r#"
    CREATE TABLE acl (
        mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
        grantee TEXT NOT NULL,
        rights TEXT NOT NULL,
        PRIMARY KEY (mailbox_id, grantee)
    );
    CREATE INDEX acl_grantee ON acl(grantee);
    "#,
    // 16: the text index without positions (`detail=none`), its text
    // lower-cased: searched by GLOB, a seventh of the size and far cheaper
    // to write. Rebuilt from the blobs when the store is opened (the
    // message_index rows and their thread ids stay).
    r#"
    DROP TABLE message_text;
    CREATE VIRTUAL TABLE message_text USING fts5(subject, hfrom, hto, hcc, hbcc, body, tokenize = 'trigram', detail = 'none');
    INSERT INTO message_text(message_text, rank) VALUES ('automerge', 16);
    "#,
    // 17: the delivery history, one row an event of a message's life
    // (store::history), expired after `[history] keep`. Written to run
    // again harmlessly (as the upgrade test replays the latest migration).
    r#"
    CREATE TABLE IF NOT EXISTS history (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        kind TEXT NOT NULL,
        message TEXT,
        queue_id INTEGER,
        message_id TEXT,
        sender TEXT,
        recipient TEXT,
        detail TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS history_at ON history(at);
    CREATE INDEX IF NOT EXISTS history_message ON history(message) WHERE message IS NOT NULL;
    CREATE INDEX IF NOT EXISTS history_queue ON history(queue_id) WHERE queue_id IS NOT NULL;
    CREATE INDEX IF NOT EXISTS history_message_id ON history(message_id) WHERE message_id IS NOT NULL;
    CREATE INDEX IF NOT EXISTS history_sender ON history(sender) WHERE sender IS NOT NULL;
    CREATE INDEX IF NOT EXISTS history_recipient ON history(recipient) WHERE recipient IS NOT NULL;
    "#,
    // 18: received reports of every kind (DMARC aggregate, TLS-RPT) in one
    // table, unique per kind, organisation and report id. Written to run
    // again harmlessly (the old table is made empty if it is gone).
    r#"
    CREATE TABLE IF NOT EXISTS received_reports (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        org TEXT NOT NULL,
        report_id TEXT NOT NULL,
        domain TEXT NOT NULL,
        begin INTEGER NOT NULL,
        end INTEGER NOT NULL,
        messages INTEGER NOT NULL,
        failed INTEGER NOT NULL,
        document BLOB NOT NULL,
        UNIQUE (kind, org, report_id)
    );
    CREATE TABLE IF NOT EXISTS dmarc_reports (
        id INTEGER PRIMARY KEY, received_at INTEGER NOT NULL, org TEXT NOT NULL,
        report_id TEXT NOT NULL, domain TEXT NOT NULL, begin INTEGER NOT NULL,
        end INTEGER NOT NULL, messages INTEGER NOT NULL, failed INTEGER NOT NULL,
        document BLOB NOT NULL
    );
    INSERT OR IGNORE INTO received_reports(id, kind, received_at, org, report_id, domain, begin, end, messages, failed, document)
        SELECT id, 'dmarc', received_at, org, report_id, domain, begin, end, messages, failed, document FROM dmarc_reports;
    DROP TABLE dmarc_reports;
    "#,
    // 19: queue ids are never used twice (the delivery history links a
    // message's attempts by its queue id): the highest id ever deleted is
    // remembered, as for blobs (13). Written to run again harmlessly.
    r#"
    CREATE TABLE IF NOT EXISTS queue_floor (id INTEGER NOT NULL);
    INSERT INTO queue_floor SELECT coalesce(max(id), 0) FROM queue_messages
        WHERE NOT EXISTS (SELECT 1 FROM queue_floor);
    CREATE TRIGGER IF NOT EXISTS queue_messages_floor AFTER DELETE ON queue_messages BEGIN
        UPDATE queue_floor SET id = max(id, old.id);
    END;
    "#,
    // 20: TLS session outcomes until the TLS report about them goes out
    // (RFC 8460; store::tls_results).
    r#"
    CREATE TABLE IF NOT EXISTS tls_results (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        domain TEXT NOT NULL,
        policy TEXT NOT NULL,
        failure TEXT
    );
    CREATE INDEX IF NOT EXISTS tls_results_domain ON tls_results(domain, at);
    "#,
    // 21: the queued messages marked REQUIRETLS (RFC 8689), gone with
    // them. Written to run again harmlessly.
    r#"
    CREATE TABLE IF NOT EXISTS queue_require_tls (queue_id INTEGER PRIMARY KEY);
    CREATE TRIGGER IF NOT EXISTS queue_require_tls_gone AFTER DELETE ON queue_messages BEGIN
        DELETE FROM queue_require_tls WHERE queue_id = old.id;
    END;
    "#,
    // 22: the account change log (JMAP /changes, RFC 8620 §5.2), written
    // by triggers in the transaction that made the change, so that no
    // write path can forget it. One row per change of a mailbox entry or
    // a mailbox, saying at once what it did to each data type: to the
    // mailbox (`mailbox`: its UIDVALIDITY; `mailbox_change` 1 created,
    // 2 updated, 3 destroyed, 4 only its counts), to the email (`email`:
    // the blob id; 1, 2, 3) and to the thread (`thread`; 1, 2, 3); NULL
    // where it did nothing to that type. One row, not three: a delivery
    // writes it on the ingest path. `seq` without AUTOINCREMENT: a new row
    // is above every live one, so each account's states only go up.
    // A mailbox's messages leave before it does, so their triggers still
    // see which account they were in.
    r#"
    CREATE TABLE IF NOT EXISTS changes (
        seq INTEGER PRIMARY KEY,
        account_id INTEGER NOT NULL,
        mailbox INTEGER,
        mailbox_change INTEGER,
        email INTEGER,
        email_change INTEGER,
        thread INTEGER,
        thread_change INTEGER
    );
    CREATE INDEX IF NOT EXISTS changes_account ON changes(account_id, seq);
    CREATE INDEX IF NOT EXISTS message_index_thread ON message_index(thread_id);
    CREATE TRIGGER IF NOT EXISTS changes_mailbox_created AFTER INSERT ON mailboxes BEGIN
        INSERT INTO changes(account_id, mailbox, mailbox_change) VALUES (new.account_id, new.uid_validity, 1);
    END;
    CREATE TRIGGER IF NOT EXISTS changes_mailbox_updated AFTER UPDATE ON mailboxes
    WHEN old.name IS NOT new.name OR old.subscribed IS NOT new.subscribed OR old.special_use IS NOT new.special_use BEGIN
        INSERT INTO changes(account_id, mailbox, mailbox_change) VALUES (new.account_id, new.uid_validity, 2);
    END;
    CREATE TRIGGER IF NOT EXISTS changes_mailbox_emptied BEFORE DELETE ON mailboxes BEGIN
        DELETE FROM mailbox_messages WHERE mailbox_id = old.id;
    END;
    CREATE TRIGGER IF NOT EXISTS changes_mailbox_destroyed AFTER DELETE ON mailboxes BEGIN
        INSERT INTO changes(account_id, mailbox, mailbox_change) VALUES (old.account_id, old.uid_validity, 3);
    END;
    CREATE TRIGGER IF NOT EXISTS changes_email_placed AFTER INSERT ON mailbox_messages BEGIN
        INSERT INTO changes(account_id, mailbox, mailbox_change, email, email_change, thread, thread_change)
        SELECT m.account_id, m.uid_validity, 4, new.blob_id,
            CASE WHEN EXISTS (SELECT 1 FROM mailbox_messages x JOIN mailboxes y ON y.id = x.mailbox_id
                WHERE x.blob_id = new.blob_id AND y.account_id = m.account_id
                AND NOT (x.mailbox_id = new.mailbox_id AND x.uid = new.uid)) THEN 2 ELSE 1 END,
            coalesce(i.thread_id, new.blob_id),
            CASE WHEN EXISTS (SELECT 1 FROM message_index t JOIN mailbox_messages x ON x.blob_id = t.blob_id
                JOIN mailboxes y ON y.id = x.mailbox_id
                WHERE t.thread_id = i.thread_id AND y.account_id = m.account_id
                AND NOT (x.mailbox_id = new.mailbox_id AND x.uid = new.uid)) THEN 2 ELSE 1 END
        FROM mailboxes m LEFT JOIN message_index i ON i.blob_id = new.blob_id WHERE m.id = new.mailbox_id;
    END;
    CREATE TRIGGER IF NOT EXISTS changes_email_flags AFTER UPDATE OF flags ON mailbox_messages
    WHEN old.flags IS NOT new.flags BEGIN
        INSERT INTO changes(account_id, mailbox, mailbox_change, email, email_change)
        SELECT account_id,
            CASE WHEN (instr(' ' || old.flags || ' ', ' \Seen ') > 0) != (instr(' ' || new.flags || ' ', ' \Seen ') > 0)
                THEN uid_validity END,
            CASE WHEN (instr(' ' || old.flags || ' ', ' \Seen ') > 0) != (instr(' ' || new.flags || ' ', ' \Seen ') > 0)
                THEN 4 END,
            new.blob_id, 2
        FROM mailboxes WHERE id = new.mailbox_id;
    END;
    CREATE TRIGGER IF NOT EXISTS changes_email_removed AFTER DELETE ON mailbox_messages BEGIN
        INSERT INTO changes(account_id, mailbox, mailbox_change, email, email_change, thread, thread_change)
        SELECT m.account_id, m.uid_validity, 4, old.blob_id,
            CASE WHEN EXISTS (SELECT 1 FROM mailbox_messages x JOIN mailboxes y ON y.id = x.mailbox_id
                WHERE x.blob_id = old.blob_id AND y.account_id = m.account_id) THEN 2 ELSE 3 END,
            coalesce(i.thread_id, old.blob_id),
            CASE WHEN EXISTS (SELECT 1 FROM message_index t JOIN mailbox_messages x ON x.blob_id = t.blob_id
                JOIN mailboxes y ON y.id = x.mailbox_id
                WHERE t.thread_id = i.thread_id AND y.account_id = m.account_id) THEN 2 ELSE 3 END
        FROM mailboxes m LEFT JOIN message_index i ON i.blob_id = old.blob_id WHERE m.id = old.mailbox_id;
    END;
    "#,
    // 23: the messages a user submitted through JMAP (RFC 8621 §7
    // EmailSubmission): which email, as which identity, with which
    // envelope, and the SMTP id that links them to the delivery history.
    r#"
    CREATE TABLE IF NOT EXISTS submissions (
        id INTEGER PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        smtp_id TEXT NOT NULL,
        email_id INTEGER NOT NULL,
        thread_id INTEGER NOT NULL,
        identity TEXT NOT NULL,
        envelope TEXT NOT NULL,
        send_at INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS submissions_account ON submissions(account_id, send_at);
    "#,
    // 24: bearer tokens a user's programs sign in to JMAP with (issued
    // and revoked by `tern account token`): only a digest of each is kept.
    r#"
    CREATE TABLE IF NOT EXISTS tokens (
        id INTEGER PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        digest BLOB NOT NULL UNIQUE,
        created INTEGER NOT NULL,
        UNIQUE (account_id, name)
    );
    "#,
    // 25: a JMAP submission held for later (FUTURERELEASE, RFC 8621 §7
    // undoStatus "pending") keeps its queue entry, so it can be canceled
    // before its release; a canceled one says so.
    r#"
    ALTER TABLE submissions ADD COLUMN queue_id INTEGER;
    ALTER TABLE submissions ADD COLUMN canceled INTEGER NOT NULL DEFAULT 0;
    "#,
    // 26: JMAP push subscriptions (RFC 8620 §7.2): where a device wants
    // StateChange objects posted, pushed to once verified, until expiry.
    r#"
    CREATE TABLE IF NOT EXISTS push_subscriptions (
        id INTEGER PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        device_client_id TEXT NOT NULL,
        url TEXT NOT NULL,
        p256dh TEXT,
        auth TEXT,
        verification_code TEXT NOT NULL,
        verified INTEGER NOT NULL DEFAULT 0,
        expires INTEGER NOT NULL,
        types TEXT
    );
    CREATE INDEX IF NOT EXISTS push_subscriptions_account ON push_subscriptions(account_id);
    "#,
    // 27: how far back each account's change log was pruned: a JMAP
    // client at an older state syncs again (cannotCalculateChanges).
    r#"
    CREATE TABLE IF NOT EXISTS change_floor (
        account_id INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
        seq INTEGER NOT NULL
    );
    "#,
    // 28: the public keys users publish (an OpenPGP key, an S/MIME
    // certificate), served by WKD and printed as OPENPGPKEY / SMIMEA.
    r#"
    CREATE TABLE IF NOT EXISTS public_keys (
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        data BLOB NOT NULL,
        fingerprint TEXT NOT NULL,
        created INTEGER NOT NULL,
        PRIMARY KEY (account_id, kind)
    );
    "#,
    // 29: encryption at rest, per account (opt-in): new mail stored
    // encrypted to the account's published OpenPGP key.
    r#"
    CREATE TABLE IF NOT EXISTS key_settings (
        account_id INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
        encrypt_at_rest INTEGER NOT NULL DEFAULT 0
    );
    "#,
    // 30: named leases (store::leases): which process holds a POP3
    // maildrop or one period's report run, and until when.
    r#"
    CREATE TABLE IF NOT EXISTS leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        until INTEGER NOT NULL
    );
    "#,
    // 31: failed logins per client address and per account, and the
    // addresses each account logged in from (store::logins): the guessing
    // throttle every node shares.
    r#"
    CREATE TABLE IF NOT EXISTS login_failures (
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        window_start INTEGER NOT NULL,
        failures INTEGER NOT NULL,
        blocked_until INTEGER,
        PRIMARY KEY (scope, key)
    );
    CREATE TABLE IF NOT EXISTS login_known (
        account TEXT NOT NULL,
        client TEXT NOT NULL,
        since INTEGER NOT NULL,
        PRIMARY KEY (account, client)
    );
    "#,
];
