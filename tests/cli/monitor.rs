//! `strata monitor`: one snapshot of connections, blocked queries and their
//! blockers, and locks, taken from a real server with a real lock conflict.

use std::time::Duration;

use crate::support::{expect_code, Project, TestDb};

#[tokio::test]
async fn once_json_shows_a_blocked_query_and_its_blocker() {
    let db = TestDb::new().await;
    let setup = db.connect().await;
    setup.batch("CREATE TABLE t (id int)").await.unwrap();
    let blocker = db.connect().await;
    blocker
        .batch(
            "SET application_name = 'migration-x'; BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE;",
        )
        .await
        .unwrap();
    let waiter = db.connect().await;
    let waiting = tokio::spawn(async move {
        waiter
            .batch("SET application_name = 'app'; SELECT count(*) FROM t")
            .await
            .unwrap();
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let project = Project::new();
    let out = project.run(&db, &["monitor", "--once", "--json"]);
    let text = expect_code(&out, 0);
    let snap: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {text}"));
    let blocked = snap["blocked"].as_array().unwrap();
    assert_eq!(blocked.len(), 1, "{snap:#}");
    assert_eq!(blocked[0]["session"]["application"], "app");
    assert_eq!(blocked[0]["blocked_by"], serde_json::json!([blocker.pid()]));
    let lock = snap["locks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["table"] == "public.t" && l["mode"] == "AccessExclusiveLock")
        .unwrap_or_else(|| panic!("{snap:#}"));
    assert_eq!(lock["granted"], 1);
    let longest = snap["long_queries"].as_array().unwrap();
    assert!(
        longest.iter().any(|q| q["application"] == "migration-x"),
        "{snap:#}"
    );
    assert!(
        snap["connections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["state"] == "idle in transaction"),
        "{snap:#}"
    );
    assert_eq!(snap["replicas"], serde_json::json!([]));

    let human = expect_code(&project.run(&db, &["monitor", "--once"]), 0);
    assert!(
        human.contains("blocked queries")
            && human.contains(&format!("blocked by {}", blocker.pid())),
        "{human}"
    );
    assert!(
        human.contains("public.t") && human.contains("1 waiting"),
        "{human}"
    );

    blocker.batch("COMMIT").await.unwrap();
    waiting.await.unwrap();
}

#[tokio::test]
async fn refreshes_a_bounded_number_of_times_and_rejects_a_bad_interval() {
    let db = TestDb::new().await;
    let project = Project::new();
    let out = project.run(
        &db,
        &["monitor", "--json", "--count", "3", "--interval", "100ms"],
    );
    expect_code(&out, 0);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
    let bad = expect_code(&project.run(&db, &["monitor", "--interval", "5ms"]), 2);
    assert!(bad.contains("at least 100ms"), "{bad}");
}
