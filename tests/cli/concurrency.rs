//! 16 concurrent `strata up` processes on one database: each migration is
//! applied exactly once.

use std::process::{Command, Stdio};

use crate::support::{Project, TestDb};

#[tokio::test]
async fn sixteen_runners_apply_each_migration_once() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_log.up.sql", "CREATE TABLE applied_log (version text NOT NULL);\nINSERT INTO applied_log VALUES ('1');\n");
    for v in 2..=8 {
        project.write(
            &format!("{v}_m{v}.up.sql"),
            &format!("CREATE TABLE t{v} (id int);\nINSERT INTO applied_log VALUES ('{v}');\nSELECT pg_sleep(0.05);\n"),
        );
    }
    let children: Vec<_> = (0..16)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_strata"))
                .current_dir(project.path())
                .args(["--database-url", &db.url, "up"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a runner failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let counts = db.column("SELECT version || ':' || count(*) FROM applied_log GROUP BY version ORDER BY version::int").await;
    assert_eq!(
        counts,
        (1..=8).map(|v| format!("{v}:1")).collect::<Vec<_>>()
    );
    assert_eq!(db.history().await.len(), 8);
    assert_eq!(
        db.column("SELECT count(*)::text FROM strata_events WHERE action = 'up'")
            .await,
        ["8"]
    );
}
