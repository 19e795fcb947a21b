//! Versioned schema migrations for PostgreSQL, applied in order at connect.
//! `schema_version` holds how many have run. A migration is never edited
//! once released: add one.
//!
//! Several nodes may start at once: each migrates inside one transaction
//! holding an advisory lock, so one of them migrates and the others find
//! the work done.

use deadpool_postgres::Object;

use super::{Prepared, pg};
use crate::error::{Result, StoreError};

/// The advisory lock key migrations take ("tern" in ASCII).
const MIGRATION_LOCK: i64 = 0x7465_726e;

pub const MIGRATIONS: &[&str] = &[
    // 1: domains, accounts, aliases, DKIM keys, settings, what an account
    // owns from its creation (its mailboxes, their annotations), DMARC
    // evaluations and received reports, TLS results, bearer tokens, JMAP
    // push subscriptions, published public keys, messages in mailboxes and
    // their contents, the outbound queue, JMAP submissions, shared
    // mailboxes' rights, the delivery history, Sieve scripts and tracking,
    // the spam defences' state (greylisting, Bayes, sending counts), the
    // search index and the account change log, named leases.
    r#"
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE settings (name TEXT PRIMARY KEY, value BYTEA NOT NULL);
    CREATE TABLE domains (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created BIGINT NOT NULL
    );
    CREATE TABLE accounts (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        address TEXT NOT NULL UNIQUE,
        domain_id BIGINT NOT NULL REFERENCES domains(id),
        password_hash TEXT NOT NULL,
        scram_sha256 TEXT NOT NULL,
        created BIGINT NOT NULL,
        quota_storage BIGINT,
        quota_messages BIGINT,
        held BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE INDEX accounts_domain ON accounts(domain_id);
    CREATE TABLE aliases (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        address TEXT NOT NULL UNIQUE,
        domain_id BIGINT NOT NULL REFERENCES domains(id),
        targets TEXT NOT NULL,
        created BIGINT NOT NULL
    );
    CREATE INDEX aliases_domain ON aliases(domain_id);
    CREATE TABLE dkim_keys (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        domain_id BIGINT NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
        selector TEXT NOT NULL,
        algorithm TEXT NOT NULL,
        private_key BYTEA NOT NULL,
        public_key TEXT NOT NULL,
        created BIGINT NOT NULL,
        active_from BIGINT NOT NULL,
        UNIQUE (domain_id, selector)
    );
    CREATE TABLE mailboxes (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        special_use TEXT,
        uid_validity BIGINT NOT NULL,
        uid_next BIGINT NOT NULL DEFAULT 1,
        highest_modseq BIGINT NOT NULL DEFAULT 1,
        subscribed BOOLEAN NOT NULL DEFAULT TRUE,
        first_recent_uid BIGINT NOT NULL DEFAULT 1,
        UNIQUE (account_id, name)
    );
    CREATE TABLE blobs (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        size BIGINT NOT NULL
    );
    CREATE TABLE blob_pieces (
        blob_id BIGINT NOT NULL REFERENCES blobs(id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        data BYTEA NOT NULL,
        PRIMARY KEY (blob_id, seq)
    );
    CREATE TABLE mailbox_messages (
        mailbox_id BIGINT NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
        uid BIGINT NOT NULL,
        blob_id BIGINT NOT NULL REFERENCES blobs(id),
        prefix BYTEA NOT NULL,
        size BIGINT NOT NULL,
        internal_date BIGINT NOT NULL,
        modseq BIGINT NOT NULL,
        flags TEXT NOT NULL DEFAULT '',
        saved_at BIGINT NOT NULL,
        PRIMARY KEY (mailbox_id, uid)
    );
    CREATE INDEX mailbox_messages_blob ON mailbox_messages(blob_id);
    CREATE INDEX mailbox_messages_modseq ON mailbox_messages(mailbox_id, modseq);
    CREATE TABLE expunged (
        mailbox_id BIGINT NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
        uid BIGINT NOT NULL,
        modseq BIGINT NOT NULL,
        PRIMARY KEY (mailbox_id, uid)
    );
    CREATE INDEX expunged_modseq ON expunged(mailbox_id, modseq);
    CREATE TABLE queue_messages (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        blob_id BIGINT NOT NULL REFERENCES blobs(id),
        sender TEXT NOT NULL,
        envid TEXT,
        ret TEXT,
        smtputf8 BOOLEAN NOT NULL,
        eight_bit BOOLEAN NOT NULL,
        created BIGINT NOT NULL,
        release_at BIGINT,
        deliver_by BIGINT,
        by_mode TEXT,
        priority SMALLINT NOT NULL DEFAULT 0,
        submitter TEXT
    );
    CREATE INDEX queue_messages_blob ON queue_messages(blob_id);
    CREATE TABLE queue_require_tls (
        queue_id BIGINT PRIMARY KEY REFERENCES queue_messages(id) ON DELETE CASCADE
    );
    CREATE TABLE queue_recipients (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        queue_id BIGINT NOT NULL REFERENCES queue_messages(id) ON DELETE CASCADE,
        address TEXT NOT NULL,
        domain TEXT NOT NULL,
        orcpt TEXT,
        notify TEXT,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt BIGINT NOT NULL,
        last_reply TEXT,
        lease_until BIGINT,
        status TEXT,
        remote_mta TEXT,
        warned BOOLEAN NOT NULL DEFAULT FALSE,
        priority SMALLINT NOT NULL DEFAULT 0
    );
    CREATE INDEX queue_recipients_due ON queue_recipients(state, priority DESC, next_attempt);
    CREATE INDEX queue_recipients_queue ON queue_recipients(queue_id);
    CREATE TABLE queue_attempts (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        queue_id BIGINT NOT NULL REFERENCES queue_messages(id) ON DELETE CASCADE,
        at BIGINT NOT NULL,
        recipients TEXT NOT NULL,
        mx TEXT,
        ip TEXT,
        tls TEXT,
        reply TEXT NOT NULL
    );
    CREATE INDEX queue_attempts_queue ON queue_attempts(queue_id);
    CREATE TABLE acl (
        mailbox_id BIGINT NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
        grantee TEXT NOT NULL,
        rights TEXT NOT NULL,
        PRIMARY KEY (mailbox_id, grantee)
    );
    CREATE INDEX acl_grantee ON acl(grantee);
    CREATE TABLE submissions (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        smtp_id TEXT NOT NULL,
        email_id BIGINT NOT NULL,
        thread_id BIGINT NOT NULL,
        identity TEXT NOT NULL,
        envelope TEXT NOT NULL,
        send_at BIGINT NOT NULL,
        queue_id BIGINT,
        canceled BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE INDEX submissions_account ON submissions(account_id, send_at);
    CREATE TABLE history (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at BIGINT NOT NULL,
        kind TEXT NOT NULL,
        message TEXT,
        queue_id BIGINT,
        message_id TEXT,
        sender TEXT,
        recipient TEXT,
        detail TEXT NOT NULL
    );
    CREATE INDEX history_at ON history(at);
    CREATE INDEX history_message ON history(message) WHERE message IS NOT NULL;
    CREATE INDEX history_queue ON history(queue_id) WHERE queue_id IS NOT NULL;
    CREATE INDEX history_message_id ON history(message_id) WHERE message_id IS NOT NULL;
    CREATE INDEX history_sender ON history(sender) WHERE sender IS NOT NULL;
    CREATE INDEX history_recipient ON history(recipient) WHERE recipient IS NOT NULL;
    CREATE TABLE sieve_scripts (
        account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        script TEXT NOT NULL,
        active BOOLEAN NOT NULL DEFAULT FALSE,
        PRIMARY KEY (account_id, name)
    );
    CREATE TABLE sieve_tracking (
        account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        id TEXT NOT NULL,
        expires BIGINT NOT NULL,
        PRIMARY KEY (account_id, id)
    );
    CREATE INDEX sieve_tracking_expires ON sieve_tracking(expires);
    CREATE TABLE greylist (
        key TEXT PRIMARY KEY,
        first_seen BIGINT NOT NULL,
        last_seen BIGINT NOT NULL,
        passed_at BIGINT,
        attempts INTEGER NOT NULL
    );
    CREATE INDEX greylist_last_seen ON greylist(last_seen);
    CREATE TABLE greylist_clients (
        network TEXT PRIMARY KEY,
        passes INTEGER NOT NULL,
        last_pass BIGINT NOT NULL
    );
    CREATE TABLE spam_tokens (
        owner BIGINT NOT NULL,
        hash BIGINT NOT NULL,
        spam BIGINT NOT NULL,
        ham BIGINT NOT NULL,
        seen BIGINT NOT NULL,
        PRIMARY KEY (owner, hash)
    );
    CREATE TABLE spam_totals (
        owner BIGINT PRIMARY KEY,
        spam BIGINT NOT NULL,
        ham BIGINT NOT NULL
    );
    CREATE TABLE spam_trained (
        owner BIGINT NOT NULL,
        digest BYTEA NOT NULL,
        spam BOOLEAN NOT NULL,
        tokens BYTEA NOT NULL,
        PRIMARY KEY (owner, digest)
    );
    CREATE TABLE sending (
        account TEXT NOT NULL,
        hour BIGINT NOT NULL,
        messages BIGINT NOT NULL DEFAULT 0,
        recipients BIGINT NOT NULL DEFAULT 0,
        new_domains BIGINT NOT NULL DEFAULT 0,
        bounces BIGINT NOT NULL DEFAULT 0,
        spam BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (account, hour)
    );
    CREATE TABLE sent_domains (
        account TEXT NOT NULL,
        domain TEXT NOT NULL,
        first_sent BIGINT NOT NULL,
        PRIMARY KEY (account, domain)
    );
    CREATE INDEX queue_messages_submitter ON queue_messages(submitter);
    CREATE TABLE metadata (
        account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        mailbox_id BIGINT REFERENCES mailboxes(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        value BYTEA NOT NULL
    );
    CREATE UNIQUE INDEX metadata_entry ON metadata(account_id, coalesce(mailbox_id, 0), name);
    CREATE TABLE dmarc_evaluations (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at BIGINT NOT NULL,
        domain TEXT NOT NULL,
        rua TEXT NOT NULL,
        policy TEXT NOT NULL,
        row TEXT NOT NULL
    );
    CREATE INDEX dmarc_evaluations_at ON dmarc_evaluations(at);
    CREATE TABLE received_reports (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        kind TEXT NOT NULL,
        received_at BIGINT NOT NULL,
        org TEXT NOT NULL,
        report_id TEXT NOT NULL,
        domain TEXT NOT NULL,
        begin_at BIGINT NOT NULL,
        end_at BIGINT NOT NULL,
        messages BIGINT NOT NULL,
        failed BIGINT NOT NULL,
        document BYTEA NOT NULL,
        UNIQUE (kind, org, report_id)
    );
    CREATE TABLE tls_results (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at BIGINT NOT NULL,
        domain TEXT NOT NULL,
        policy TEXT NOT NULL,
        failure TEXT
    );
    CREATE INDEX tls_results_domain ON tls_results(domain, at);
    CREATE TABLE tokens (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        digest BYTEA NOT NULL UNIQUE,
        created BIGINT NOT NULL,
        UNIQUE (account_id, name)
    );
    CREATE TABLE push_subscriptions (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        device_client_id TEXT NOT NULL,
        url TEXT NOT NULL,
        p256dh TEXT,
        auth TEXT,
        verification_code TEXT NOT NULL,
        verified BOOLEAN NOT NULL DEFAULT FALSE,
        expires BIGINT NOT NULL,
        types TEXT
    );
    CREATE INDEX push_subscriptions_account ON push_subscriptions(account_id);
    CREATE TABLE public_keys (
        account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        data BYTEA NOT NULL,
        fingerprint TEXT NOT NULL,
        created BIGINT NOT NULL,
        PRIMARY KEY (account_id, kind)
    );
    CREATE TABLE key_settings (
        account_id BIGINT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
        encrypt_at_rest BOOLEAN NOT NULL DEFAULT FALSE
    );

    -- Named leases (store::leases): who holds a POP3 maildrop or one
    -- period's report run, and until when.
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        until BIGINT NOT NULL
    );
    -- The search index: one row per stored content in a mailbox (the
    -- header fields asked about, decoded once, and a thread id), its text
    -- lower-cased in `message_text` under one trigram index (pg_trgm:
    -- LIKE '%needle%' on any column is an index scan).
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
    CREATE TABLE message_index (
        blob_id BIGINT PRIMARY KEY REFERENCES blobs(id) ON DELETE CASCADE,
        sent BIGINT,
        sent_day BIGINT,
        subject TEXT NOT NULL,
        base_subject TEXT NOT NULL,
        reply BOOLEAN NOT NULL,
        from_key TEXT NOT NULL,
        to_key TEXT NOT NULL,
        cc_key TEXT NOT NULL,
        message_id TEXT,
        in_reply_to TEXT NOT NULL,
        refs TEXT NOT NULL,
        preview TEXT NOT NULL,
        thread_id BIGINT NOT NULL
    );
    CREATE INDEX message_index_message_id ON message_index(message_id);
    CREATE INDEX message_index_thread ON message_index(thread_id);
    CREATE TABLE message_text (
        blob_id BIGINT PRIMARY KEY REFERENCES blobs(id) ON DELETE CASCADE,
        subject TEXT NOT NULL,
        hfrom TEXT NOT NULL,
        hto TEXT NOT NULL,
        hcc TEXT NOT NULL,
        hbcc TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX message_text_trigrams ON message_text USING gin (
        subject gin_trgm_ops, hfrom gin_trgm_ops, hto gin_trgm_ops,
        hcc gin_trgm_ops, hbcc gin_trgm_ops, body gin_trgm_ops);

    -- The account change log (JMAP /changes), written by triggers in the
    -- transaction that makes the change, whatever the path: one row per
    -- change of a mailbox entry or a mailbox, saying what it did to the
    -- mailbox (its UIDVALIDITY; 1 created, 2 updated, 3 destroyed, 4 only
    -- its counts), the email (the blob id; 1, 2, 3) and the thread (1, 2,
    -- 3). `seq` is the account's own counter, taken under its row lock:
    -- two transactions changing one account take their numbers in the
    -- order they commit, so a client that read state N never later meets
    -- a change numbered below N (a shared sequence would not promise it).
    CREATE TABLE change_counters (
        account_id BIGINT PRIMARY KEY,
        seq BIGINT NOT NULL
    );
    CREATE TABLE changes (
        account_id BIGINT NOT NULL,
        seq BIGINT NOT NULL,
        mailbox BIGINT,
        mailbox_change SMALLINT,
        email BIGINT,
        email_change SMALLINT,
        thread BIGINT,
        thread_change SMALLINT,
        PRIMARY KEY (account_id, seq)
    );
    CREATE TABLE change_floor (
        account_id BIGINT PRIMARY KEY,
        seq BIGINT NOT NULL
    );
    CREATE FUNCTION tern_next_change(account BIGINT) RETURNS BIGINT LANGUAGE sql AS $$
        INSERT INTO change_counters(account_id, seq) VALUES (account, 1)
        ON CONFLICT (account_id) DO UPDATE SET seq = change_counters.seq + 1
        RETURNING seq
    $$;
    CREATE FUNCTION tern_mailbox_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO changes(account_id, seq, mailbox, mailbox_change)
            VALUES (NEW.account_id, tern_next_change(NEW.account_id), NEW.uid_validity, 1);
        ELSIF TG_OP = 'UPDATE' THEN
            INSERT INTO changes(account_id, seq, mailbox, mailbox_change)
            VALUES (NEW.account_id, tern_next_change(NEW.account_id), NEW.uid_validity, 2);
        ELSE
            INSERT INTO changes(account_id, seq, mailbox, mailbox_change)
            VALUES (OLD.account_id, tern_next_change(OLD.account_id), OLD.uid_validity, 3);
        END IF;
        RETURN NULL;
    END $$;
    CREATE TRIGGER changes_mailbox_created AFTER INSERT ON mailboxes
        FOR EACH ROW EXECUTE FUNCTION tern_mailbox_changed();
    CREATE TRIGGER changes_mailbox_updated AFTER UPDATE ON mailboxes FOR EACH ROW
        WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.subscribed IS DISTINCT FROM NEW.subscribed
              OR OLD.special_use IS DISTINCT FROM NEW.special_use)
        EXECUTE FUNCTION tern_mailbox_changed();
    CREATE TRIGGER changes_mailbox_destroyed AFTER DELETE ON mailboxes
        FOR EACH ROW EXECUTE FUNCTION tern_mailbox_changed();
    -- A mailbox's messages leave before it does, so their triggers still
    -- see which account they were in.
    CREATE FUNCTION tern_mailbox_emptied() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM mailbox_messages WHERE mailbox_id = OLD.id;
        RETURN OLD;
    END $$;
    CREATE TRIGGER changes_mailbox_emptied BEFORE DELETE ON mailboxes
        FOR EACH ROW EXECUTE FUNCTION tern_mailbox_emptied();
    -- An entry placed or removed: the mailbox's counts changed; the email
    -- and its thread were created (destroyed) when no other entry of the
    -- account holds them, else updated.
    CREATE FUNCTION tern_entry_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        entry mailbox_messages;
        account BIGINT;
        validity BIGINT;
        conversation BIGINT;
        other_copy BOOLEAN;
        other_in_thread BOOLEAN;
    BEGIN
        IF TG_OP = 'INSERT' THEN entry := NEW; ELSE entry := OLD; END IF;
        SELECT account_id, uid_validity INTO account, validity FROM mailboxes WHERE id = entry.mailbox_id;
        IF NOT FOUND THEN RETURN NULL; END IF;
        SELECT thread_id INTO conversation FROM message_index WHERE blob_id = entry.blob_id;
        SELECT EXISTS (SELECT 1 FROM mailbox_messages x JOIN mailboxes y ON y.id = x.mailbox_id
            WHERE x.blob_id = entry.blob_id AND y.account_id = account
              AND NOT (x.mailbox_id = entry.mailbox_id AND x.uid = entry.uid)) INTO other_copy;
        SELECT EXISTS (SELECT 1 FROM message_index t JOIN mailbox_messages x ON x.blob_id = t.blob_id
            JOIN mailboxes y ON y.id = x.mailbox_id
            WHERE t.thread_id = conversation AND y.account_id = account
              AND NOT (x.mailbox_id = entry.mailbox_id AND x.uid = entry.uid)) INTO other_in_thread;
        INSERT INTO changes(account_id, seq, mailbox, mailbox_change, email, email_change, thread, thread_change)
        VALUES (account, tern_next_change(account), validity, 4, entry.blob_id,
            CASE WHEN other_copy THEN 2 WHEN TG_OP = 'INSERT' THEN 1 ELSE 3 END,
            coalesce(conversation, entry.blob_id),
            CASE WHEN other_in_thread THEN 2 WHEN TG_OP = 'INSERT' THEN 1 ELSE 3 END);
        RETURN NULL;
    END $$;
    CREATE TRIGGER changes_email_placed AFTER INSERT ON mailbox_messages
        FOR EACH ROW EXECUTE FUNCTION tern_entry_changed();
    CREATE TRIGGER changes_email_removed AFTER DELETE ON mailbox_messages
        FOR EACH ROW EXECUTE FUNCTION tern_entry_changed();
    -- Flags: the email changed; \Seen changes the mailbox's counts too.
    CREATE FUNCTION tern_flags_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        account BIGINT;
        validity BIGINT;
        seen_changed BOOLEAN;
    BEGIN
        SELECT account_id, uid_validity INTO account, validity FROM mailboxes WHERE id = NEW.mailbox_id;
        IF NOT FOUND THEN RETURN NULL; END IF;
        seen_changed := (position(' \Seen ' IN ' ' || OLD.flags || ' ') > 0)
            <> (position(' \Seen ' IN ' ' || NEW.flags || ' ') > 0);
        INSERT INTO changes(account_id, seq, mailbox, mailbox_change, email, email_change)
        VALUES (account, tern_next_change(account),
            CASE WHEN seen_changed THEN validity END, CASE WHEN seen_changed THEN 4 END,
            NEW.blob_id, 2);
        RETURN NULL;
    END $$;
    CREATE TRIGGER changes_email_flags AFTER UPDATE OF flags ON mailbox_messages FOR EACH ROW
        WHEN (OLD.flags IS DISTINCT FROM NEW.flags)
        EXECUTE FUNCTION tern_flags_changed();
    "#,
    // 2: failed logins per client address and per account, and the
    // addresses each account logged in from (store::logins): the guessing
    // throttle every node shares.
    r#"
    CREATE TABLE login_failures (
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        window_start BIGINT NOT NULL,
        failures BIGINT NOT NULL,
        blocked_until BIGINT,
        PRIMARY KEY (scope, key)
    );
    CREATE TABLE login_known (
        account TEXT NOT NULL,
        client TEXT NOT NULL,
        since BIGINT NOT NULL,
        PRIMARY KEY (account, client)
    );
    "#,
];

/// Bring the database up to date; how many migrations ran.
pub async fn migrate(client: &mut Object) -> Result<usize> {
    let tx = client.transaction().await.map_err(pg)?;
    tx.execute_p("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .await
        .map_err(pg)?;
    let done: Option<i32> = tx
        .query_opt_p("SELECT version FROM schema_version", &[])
        .await
        .map_err(pg)?
        .map(|r| r.get(0));
    let done = done.unwrap_or(0).max(0) as usize;
    if done > MIGRATIONS.len() {
        return Err(StoreError::Invalid(format!(
            "the database has schema version {done}, newer than this build's {}: upgrade Tern",
            MIGRATIONS.len()
        )));
    }
    for migration in MIGRATIONS.iter().skip(done) {
        tx.batch_execute(migration).await.map_err(pg)?;
    }
    let now = MIGRATIONS.len() as i32;
    tx.execute_p("DELETE FROM schema_version", &[])
        .await
        .map_err(pg)?;
    tx.execute_p("INSERT INTO schema_version(version) VALUES ($1)", &[&now])
        .await
        .map_err(pg)?;
    tx.commit().await.map_err(pg)?;
    Ok(MIGRATIONS.len().saturating_sub(done))
}
