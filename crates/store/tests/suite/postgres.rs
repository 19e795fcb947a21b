//! What only the PostgreSQL backend has to show: several nodes on one
//! database (they migrate once and see each other's writes), a commit that
//! survives the database crashing, and a schema newer than the build refused.

use std::sync::Arc;

use store::*;

use super::pg_server::Postgres;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_migrate_once_and_share_what_they_write() {
    let server = Postgres::start();
    let url = server.url();
    let nodes = connect_together(&url, 3).await;
    nodes[0].add_domain("a.test").await.unwrap();
    nodes[1]
        .add_alias("info@a.test", &["x@b.test".to_string()])
        .await
        .unwrap();
    assert_eq!(
        nodes[2].lookup_address("info@a.test").await.unwrap(),
        AddressKind::Alias(vec!["x@b.test".into()])
    );
    // Two nodes adding the same domain at once: one wins, the other is told.
    let (a, b) = tokio::join!(nodes[0].add_domain("c.test"), nodes[1].add_domain("c.test"));
    let lost = if a.is_ok() { b } else { a };
    assert!(matches!(lost, Err(StoreError::Duplicate(m)) if m.contains("c.test")));
    assert_eq!(nodes[2].list_domains().await.unwrap().len(), 2);
}

/// `count` stores connecting at once to a database none has migrated.
async fn connect_together(url: &str, count: usize) -> Vec<Arc<PostgresStore>> {
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let url = url.to_string();
            tokio::spawn(async move { PostgresStore::connect(&url).await })
        })
        .collect();
    let mut nodes = Vec::new();
    for t in tasks {
        nodes.push(Arc::new(t.await.unwrap().unwrap()));
    }
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_survives_the_database_crashing() {
    let server = Postgres::start();
    let store = PostgresStore::connect(&server.url()).await.unwrap();
    store.add_domain("a.test").await.unwrap();
    store
        .record_evaluations(vec![NewEvaluation {
            at: 5,
            domain: "a.test".into(),
            rua: "mailto:r@a.test".into(),
            policy: "p".into(),
            row: "r".into(),
        }])
        .await
        .unwrap();
    server.kill();
    assert!(store.list_domains().await.is_err(), "the database is down");
    server.restart();
    let again = PostgresStore::connect(&server.url()).await.unwrap();
    assert_eq!(again.list_domains().await.unwrap()[0].name, "a.test");
    assert_eq!(again.evaluations_before(10).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_newer_than_this_build_is_refused() {
    let server = Postgres::start();
    PostgresStore::connect(&server.url()).await.unwrap();
    let (client, connection) = tokio_postgres::connect(&server.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .execute("UPDATE schema_version SET version = 999", &[])
        .await
        .unwrap();
    assert!(matches!(
        PostgresStore::connect(&server.url()).await,
        Err(StoreError::Invalid(m)) if m.contains("999")
    ));
}
