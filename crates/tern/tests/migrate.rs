//! Safe upgrades: `tern migrate --check` says what a start would change
//! and changes nothing; migrating an older store first keeps a checked
//! snapshot of it next to the database; a store newer than the binary is
//! refused (not touched).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[test]
fn check_then_migrate_with_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let offline = common::OfflineTern::new(&data);
    let tern = |args: &[&str]| offline.run(args);
    let (ok, out) = tern(&["migrate", "--check"]);
    assert!(ok && out.contains("no store yet"), "{out}");
    let (ok, _) = tern(&["domain", "add", "a.test"]);
    assert!(ok);
    let (ok, out) = tern(&["migrate", "--check"]);
    assert!(ok && out.contains("up to date, nothing to do"), "{out}");

    // As if the store were written by the previous version.
    let db = data.join("tern.db");
    let latest: i64 = {
        let c = rusqlite::Connection::open(&db).unwrap();
        let v: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        c.pragma_update(None, "user_version", v - 1).unwrap();
        v
    };
    let (ok, out) = tern(&["migrate", "--check"]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!(
            "schema version {}; this Tern writes {latest}",
            latest - 1
        )),
        "{out}"
    );
    let version = |db: &std::path::Path| -> i64 {
        rusqlite::Connection::open(db)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(version(&db), latest - 1, "--check changed nothing");

    let (ok, out) = tern(&["migrate"]);
    assert!(ok, "{out}");
    assert_eq!(version(&db), latest);
    let snapshot = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.to_string_lossy()
                .contains(&format!("tern.db.schema-{}-", latest - 1))
        })
        .unwrap_or_else(|| panic!("no snapshot in {}", data.display()));
    assert_eq!(version(&snapshot), latest - 1);
    let (ok, out) = tern(&["domain", "list"]);
    assert!(ok && out.contains("a.test"), "{out}");

    // A store from a newer Tern: refused, untouched.
    rusqlite::Connection::open(&db)
        .unwrap()
        .pragma_update(None, "user_version", latest + 5)
        .unwrap();
    let (ok, out) = tern(&["migrate", "--check"]);
    assert!(!ok && out.contains("newer than this Tern"), "{out}");
    let (ok, out) = tern(&["domain", "list"]);
    assert!(!ok && out.contains("newer than this Tern knows"), "{out}");
    assert_eq!(version(&db), latest + 5);
}
