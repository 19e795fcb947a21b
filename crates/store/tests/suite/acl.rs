//! Shared mailboxes (`AclStore`) on every backend: rights granted, read,
//! merged with `anyone`'s, listed for the grantee, and gone with their
//! mailbox or their grantee's account.

use std::sync::Arc;

use store::*;

use super::{MailStore, creds};

pub async fn shared_mailbox_rights<S: MailStore + AclStore + ?Sized + 'static>(s: Arc<S>) {
    s.add_domain("a.test").await.unwrap();
    let alice = s.add_account("alice@a.test", creds("a")).await.unwrap();
    s.add_account("bob@a.test", creds("b")).await.unwrap();
    let team = s.create_mailbox(alice.id, "Team").await.unwrap();
    let news = s.create_mailbox(alice.id, "News").await.unwrap();

    s.set_rights(team.id, "bob@a.test", "lr").await.unwrap();
    s.set_rights(team.id, ANYONE, "rs").await.unwrap();
    s.set_rights(news.id, ANYONE, "lr").await.unwrap();
    assert_eq!(
        s.acl(team.id).await.unwrap(),
        vec![
            ("anyone".to_string(), "rs".to_string()),
            ("bob@a.test".to_string(), "lr".to_string())
        ]
    );
    // Bob's own entry and anyone's together, each letter once (in no
    // particular order: the protocol side orders them).
    let rights = |r: String| {
        let mut letters: Vec<char> = r.chars().collect();
        letters.sort_unstable();
        letters.into_iter().collect::<String>()
    };
    assert_eq!(
        rights(s.rights_of(team.id, "bob@a.test").await.unwrap()),
        "lrs"
    );
    assert_eq!(
        rights(s.rights_of(team.id, "carol@a.test").await.unwrap()),
        "rs"
    );
    // Replaced, not added to.
    s.set_rights(team.id, "bob@a.test", "lrw").await.unwrap();
    assert_eq!(
        rights(s.rights_of(team.id, "bob@a.test").await.unwrap()),
        "lrsw"
    );

    let shared = s.shared_with("bob@a.test").await.unwrap();
    let names: Vec<(&str, &str, String)> = shared
        .iter()
        .map(|m| {
            let granted = rights(m.rights.clone());
            (m.owner.as_str(), m.mailbox.name.as_str(), granted)
        })
        .collect();
    assert_eq!(
        names,
        [
            ("alice@a.test", "News", "lr".to_string()),
            ("alice@a.test", "Team", "lrsw".to_string())
        ]
    );
    // Nobody is shown their own mailboxes as shared.
    assert!(s.shared_with("alice@a.test").await.unwrap().is_empty());

    // Empty rights remove the entry.
    s.set_rights(team.id, ANYONE, "").await.unwrap();
    assert_eq!(s.acl(team.id).await.unwrap().len(), 1);
    // A mailbox deleted takes its entries along.
    s.delete_mailbox(alice.id, "News").await.unwrap();
    assert_eq!(s.shared_with("bob@a.test").await.unwrap().len(), 1);
    // A removed account's grants go with it: a new bob starts with none.
    s.remove_account("bob@a.test").await.unwrap();
    assert!(s.acl(team.id).await.unwrap().is_empty());
    s.add_account("bob@a.test", creds("b2")).await.unwrap();
    assert!(s.shared_with("bob@a.test").await.unwrap().is_empty());
}
