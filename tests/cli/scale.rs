//! Large data files: `up` sends runs of data statements together and still
//! names the statement that failed; `lint` stays linear (see also the work
//! counter test in `sql`).

use crate::support::{expect_code, Project, TestDb};

/// `n` INSERTs, one per line; `bad` replaces statement `k` (1-based).
fn data_file(n: usize, bad: Option<(usize, &str)>) -> String {
    (1..=n)
        .map(|i| match bad {
            Some((k, sql)) if k == i => format!("{sql};\n"),
            _ => format!("INSERT INTO t (id, v) VALUES ({i}, {i});\n"),
        })
        .collect()
}

#[tokio::test]
async fn a_data_file_goes_in_batches_and_a_failure_names_its_statement() {
    let db = TestDb::new().await;
    let project = Project::applied(&db, "CREATE TABLE t (id int PRIMARY KEY, v int);\n");
    // An error with a position (in the batch sent): pinned on its statement.
    project.write(
        "2_data.up.sql",
        &data_file(
            3_000,
            Some((2_345, "INSERT INTO t (id, v) VALUES (2345, 'x')")),
        ),
    );
    let out = expect_code(&project.run(&db, &["up"]), 1);
    assert!(
        out.contains("2_data.up.sql:2345 (statement 2345 of 3000)"),
        "{out}"
    );
    assert!(
        out.contains("invalid input syntax for type integer"),
        "{out}"
    );
    assert_eq!(db.column("SELECT count(*)::text FROM t").await, ["0"]);
    // An error without a position (a duplicate key): found by running the
    // statements one at a time.
    project.write(
        "2_data.up.sql",
        &data_file(3_000, Some((1_700, "INSERT INTO t (id, v) VALUES (5, 5)"))),
    );
    let out = expect_code(&project.run(&db, &["up"]), 1);
    assert!(
        out.contains("2_data.up.sql:1700 (statement 1700 of 3000)"),
        "{out}"
    );
    assert!(out.contains("duplicate key"), "{out}");
    assert_eq!(db.column("SELECT count(*)::text FROM t").await, ["0"]);
    // A data statement between DDL: everything runs, once, in order.
    let mut text = data_file(2_500, None);
    text.push_str("ALTER TABLE t ADD COLUMN w int;\nUPDATE t SET w = v * 2;\nINSERT INTO t (id, v, w) VALUES (0, 0, 0);\n");
    project.write("2_data.up.sql", &text);
    expect_code(&project.run(&db, &["up"]), 0);
    assert_eq!(
        db.column("SELECT count(*) || ':' || sum(v) || ':' || sum(w) FROM t")
            .await,
        [format!("2501:{}:{}", 2_500 * 2_501 / 2, 2_500 * 2_501)]
    );
    assert_eq!(
        db.history().await,
        [
            ("1".to_owned(), "applied".to_owned()),
            ("2".to_owned(), "applied".to_owned())
        ]
    );
}
