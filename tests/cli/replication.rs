//! `max_replication_lag`: against a real streaming replica whose replay is
//! paused, the running statement is cancelled and retried, the run stops
//! with the reason when the lag does not go away, and it completes once the
//! replica catches up. This test starts a primary and a replica of its own,
//! so the other tests never see a replica.

use std::time::{Duration, Instant};

use strata::localpg::Throwaway;

use crate::support::{expect_code, strata, Project};

async fn connect(conninfo: &str) -> strata::db::Connection {
    strata::Target::parse(conninfo)
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn column(conninfo: &str, sql: &str) -> Vec<String> {
    connect(conninfo)
        .await
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, Option<String>>(0).unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn a_lagging_replica_stops_the_run_until_it_catches_up() {
    let primary = Throwaway::start().expect("start a primary");
    let standby = primary.start_standby().expect("start a streaming replica");
    connect(&primary.conninfo("postgres"))
        .await
        .batch("CREATE DATABASE r")
        .await
        .unwrap();
    let url = primary.conninfo("r");
    let started = Instant::now();
    while column(
        &primary.conninfo("postgres"),
        "SELECT state FROM pg_stat_replication",
    )
    .await
        != ["streaming"]
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the replica never streamed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let project = Project::new();
    // max_lock_hold off: this test is about the replica, and its migration
    // holds a lock the writer waits for.
    project.config(
        "max_replication_lag = \"1s\"\nlock_retry_budget = \"4s\"\npreflight_wait = \"0s\"\nmax_lock_hold = \"off\"\n",
    );
    project.write("1_t.up.sql", "CREATE TABLE ticks (at timestamptz);\n");
    expect_code(&strata(project.path(), Some(&url), &["up"]), 0);
    project.write(
        "2_slow.up.sql",
        "ALTER TABLE ticks ADD COLUMN note text;\nSELECT pg_sleep(3);\n",
    );

    // Replay stops on the replica while the application keeps writing.
    connect(&standby.conninfo("postgres"))
        .await
        .batch("SELECT pg_wal_replay_pause()")
        .await
        .unwrap();
    let writer_url = url.clone();
    let writer = tokio::spawn(async move {
        let app = connect(&writer_url).await;
        for _ in 0..100 {
            let _ = app.batch("INSERT INTO ticks VALUES (now())").await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let (dir, u) = (project.path().to_path_buf(), url.clone());
    let out = tokio::task::spawn_blocking(move || strata(&dir, Some(&u), &["up"]))
        .await
        .unwrap();
    let text = expect_code(&out, 1);
    assert!(
        text.contains("cancelled by the watchdog: a replica lags"),
        "{text}"
    );
    assert!(text.contains("(max_replication_lag = 1 s)"), "{text}");
    assert!(text.contains("retry 1 in"), "{text}");
    assert!(text.contains("nothing was applied"), "{text}");
    assert_eq!(
        column(&url, "SELECT count(*)::text FROM information_schema.columns WHERE table_name = 'ticks' AND column_name = 'note'").await,
        ["0"]
    );

    // Once the replica replays again, the migration goes through.
    connect(&standby.conninfo("postgres"))
        .await
        .batch("SELECT pg_wal_replay_resume()")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (dir, u) = (project.path().to_path_buf(), url.clone());
    let out = tokio::task::spawn_blocking(move || strata(&dir, Some(&u), &["up"]))
        .await
        .unwrap();
    expect_code(&out, 0);
    writer.abort();
    assert_eq!(
        column(&url, "SELECT state FROM strata_migrations ORDER BY version").await,
        ["applied", "applied"]
    );
}
