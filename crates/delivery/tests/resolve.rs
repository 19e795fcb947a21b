//! Recipient resolution against a real store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use delivery::{Mda, MdaConfig, Resolution};
use message::Mailbox;
use store::{Backend, Credentials, Store};

async fn setup(dir: &tempfile::TempDir) -> (Arc<dyn Store>, Mda) {
    let s = store::open(&Backend::Sqlite(dir.path().into())).unwrap();
    s.add_domain("d.test").await.unwrap();
    let c = Credentials {
        password_hash: "h".into(),
        scram_sha256: "s".into(),
    };
    s.add_account("alice@d.test", c.clone()).await.unwrap();
    s.add_account("bob@d.test", c).await.unwrap();
    (s.clone(), Mda::new(s, MdaConfig::default()))
}

fn mb(s: &str) -> Mailbox {
    Mailbox::parse(s).unwrap()
}

#[tokio::test]
async fn accounts_subaddresses_aliases_catch_all() {
    let dir = tempfile::tempdir().unwrap();
    let (s, mda) = setup(&dir).await;
    let alice = match mda.resolve(&mb("Alice@D.test")).await.unwrap() {
        Resolution::Deliver { local, remote } if remote.is_empty() && local.len() == 1 => {
            local[0].clone()
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(alice.address, "alice@d.test");
    assert_eq!(
        mda.resolve(&mb("alice+lists@d.test")).await.unwrap(),
        Resolution::Deliver {
            local: vec![alice.clone()],
            remote: vec![]
        }
    );
    assert_eq!(
        mda.resolve(&mb("nobody@d.test")).await.unwrap(),
        Resolution::Unknown
    );
    assert_eq!(
        mda.resolve(&mb("alice@far.test")).await.unwrap(),
        Resolution::NotLocal
    );
    assert_eq!(
        mda.resolve(&mb("alice@[127.0.0.1]")).await.unwrap(),
        Resolution::NotLocal
    );

    s.add_alias(
        "team@d.test",
        &[
            "alice@d.test".into(),
            "bob@d.test".into(),
            "carol@far.test".into(),
            "ghost@d.test".into(),
        ],
    )
    .await
    .unwrap();
    match mda.resolve(&mb("team+x@d.test")).await.unwrap() {
        Resolution::Deliver { local, remote } => {
            assert_eq!(
                local.iter().map(|t| t.address.as_str()).collect::<Vec<_>>(),
                ["alice@d.test", "bob@d.test"]
            );
            assert_eq!(remote, ["carol@far.test"]);
        }
        other => panic!("{other:?}"),
    }
    s.add_alias("@d.test", &["bob@d.test".into()])
        .await
        .unwrap();
    assert!(
        matches!(mda.resolve(&mb("nobody@d.test")).await.unwrap(), Resolution::Deliver { local, .. } if local[0].address == "bob@d.test")
    );
}

/// C-RL9: A -> B -> A is a loop; a cycle beside a real target is cut and the target kept.
#[tokio::test]
async fn alias_cycles() {
    let dir = tempfile::tempdir().unwrap();
    let (s, mda) = setup(&dir).await;
    s.add_alias("a@d.test", &["b@d.test".into()]).await.unwrap();
    s.add_alias("b@d.test", &["a@d.test".into()]).await.unwrap();
    assert_eq!(
        mda.resolve(&mb("a@d.test")).await.unwrap(),
        Resolution::Loop
    );
    s.add_alias("c@d.test", &["d@d.test".into(), "alice@d.test".into()])
        .await
        .unwrap();
    s.add_alias("d@d.test", &["c@d.test".into()]).await.unwrap();
    let r = mda.resolve(&mb("c@d.test")).await.unwrap();
    assert!(
        matches!(r, Resolution::Deliver { ref local, .. } if local.len() == 1 && local[0].address == "alice@d.test"),
        "{r:?}"
    );
}
