//! The guessing throttle's counts on every backend (store::logins): one
//! client address blocked when it reaches its limit, an account's failures
//! counted whatever the address, windows that start again, the addresses
//! an account logged in from, and failures counted at once by many
//! writers (several nodes) all counted.

use std::sync::Arc;

use store::*;

const W: LoginWindows = LoginWindows {
    client_window: 600,
    client_limit: 3,
    client_block: 900,
    account_window: 3600,
};

pub async fn login_failures<S: LoginStore + ?Sized + 'static>(s: Arc<S>) {
    let fresh = s.login_standing("10.0.0.1", "a@x", 1000, &W).await.unwrap();
    assert_eq!(fresh, LoginStanding::default());

    let one = s.login_failed("10.0.0.1", "a@x", 1000, &W).await.unwrap();
    assert_eq!((one.client_failures, one.account_failures), (1, 1));
    assert!(!one.blocked(1000));
    s.login_failed("10.0.0.1", "b@x", 1001, &W).await.unwrap();
    let third = s.login_failed("10.0.0.1", "a@x", 1002, &W).await.unwrap();
    assert_eq!((third.client_failures, third.account_failures), (3, 2));
    assert_eq!(third.blocked_until, Some(1002 + 900), "the limit blocks");
    let other = s.login_standing("10.0.0.2", "a@x", 1003, &W).await.unwrap();
    assert!(!other.blocked(1003), "other addresses are not blocked");
    assert_eq!(other.account_failures, 2, "the account's count is shared");
    assert!(
        s.login_standing("10.0.0.1", "c@x", 1901, &W)
            .await
            .unwrap()
            .blocked(1901)
    );
    let after = s.login_standing("10.0.0.1", "c@x", 1902, &W).await.unwrap();
    assert!(!after.blocked(1902), "the block runs out");
    assert_eq!(after.client_failures, 0, "and the window with it");

    // A window that is over starts again at the next failure.
    let again = s.login_failed("10.0.0.1", "a@x", 1700, &W).await.unwrap();
    assert_eq!(again.client_failures, 1);
    assert_eq!(
        again.blocked_until, None,
        "a new window drops the old block"
    );
    assert_eq!(again.account_failures, 3, "the account's window is longer");
    let later = s
        .login_failed("10.0.0.3", "a@x", 1000 + 3601, &W)
        .await
        .unwrap();
    assert_eq!(later.account_failures, 1);

    // A success forgives the address and makes it known to the account.
    s.login_failed("10.0.0.4", "a@x", 5000, &W).await.unwrap();
    s.login_succeeded("10.0.0.4", "a@x", 5001).await.unwrap();
    let known = s.login_standing("10.0.0.4", "a@x", 5002, &W).await.unwrap();
    assert!(known.known_client);
    assert_eq!(known.client_failures, 0);
    assert!(
        !s.login_standing("10.0.0.4", "b@x", 5002, &W)
            .await
            .unwrap()
            .known_client
    );
    s.login_succeeded("10.0.0.4", "a@x", 5003).await.unwrap();
    for n in 0..20 {
        s.login_succeeded(&format!("10.1.0.{n}"), "a@x", 6000)
            .await
            .unwrap();
    }
    let newest = s
        .login_standing("10.1.0.19", "a@x", 6001, &W)
        .await
        .unwrap();
    assert!(newest.known_client, "the newest address is kept");
    let oldest = s.login_standing("10.0.0.4", "a@x", 6001, &W).await.unwrap();
    assert!(!oldest.known_client, "only the newest 16 are");

    // Expiry forgets what no longer counts, and keeps a running block.
    s.login_failed("10.0.0.5", "d@x", 7000, &W).await.unwrap();
    for _ in 0..3 {
        s.login_failed("10.0.0.6", "d@x", 7000, &W).await.unwrap();
    }
    let gone = s.expire_login_failures(7000 + 601, &W).await.unwrap();
    assert!(gone >= 1, "10.0.0.5's window is over");
    assert!(
        s.login_standing("10.0.0.6", "d@x", 7601, &W)
            .await
            .unwrap()
            .blocked(7601)
    );
    assert_eq!(
        s.login_standing("10.0.0.5", "d@x", 7601, &W)
            .await
            .unwrap()
            .account_failures,
        4,
        "the account's window goes on"
    );
}

/// Eight writers failing at once (eight nodes' sessions): every failure
/// counts, and the address is blocked once the limit is reached.
pub async fn login_failures_counted_at_once<S: LoginStore + ?Sized + 'static>(s: Arc<S>) {
    let windows = LoginWindows {
        client_limit: 40,
        ..W
    };
    let mut writers = Vec::new();
    for n in 0..8 {
        let s = s.clone();
        writers.push(tokio::spawn(async move {
            for _ in 0..5 {
                s.login_failed("10.9.9.9", &format!("u{n}@x"), 100, &windows)
                    .await
                    .unwrap();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let now = s
        .login_standing("10.9.9.9", "u0@x", 100, &windows)
        .await
        .unwrap();
    assert_eq!(now.client_failures, 40);
    assert!(now.blocked(100));
}
