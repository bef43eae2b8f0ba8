//! `engine::table_facts`: the catalog facts plan operations compile from.

use strata::engine::table_facts;

use crate::support::TestDb;

#[tokio::test]
async fn reads_columns_keys_indexes_constraints_triggers_and_views_of_a_table() {
    let db = TestDb::new().await;
    let conn = db.connect().await;
    conn.batch(
        "CREATE SCHEMA app;
         CREATE TABLE app.teams (id bigint PRIMARY KEY);
         CREATE TABLE app.\"Users\" (
             id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
             email varchar(200) NOT NULL DEFAULT 'none',
             team_id bigint REFERENCES app.teams (id),
             score int CHECK (score >= 0),
             doubled int GENERATED ALWAYS AS (score * 2) STORED,
             CONSTRAINT users_email_key UNIQUE (email));
         CREATE INDEX users_lower_email ON app.\"Users\" (lower(email)) WHERE score > 0;
         CREATE TABLE app.sessions (user_id bigint REFERENCES app.\"Users\" (id));
         CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
         CREATE TRIGGER touch BEFORE UPDATE ON app.\"Users\" FOR EACH ROW EXECUTE FUNCTION app.touch();
         CREATE VIEW app.emails AS SELECT email FROM app.\"Users\";
         INSERT INTO app.\"Users\" (email, score) SELECT 'u' || g, g FROM generate_series(1, 100) g;
         ANALYZE app.\"Users\";",
    )
    .await
    .unwrap();

    let facts = table_facts(&conn, "app.\"Users\"").await.unwrap();

    assert_eq!(facts.name, "app.\"Users\"");
    let columns: Vec<_> = facts.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(columns, ["id", "email", "team_id", "score", "doubled"]);
    let email = &facts.columns[1];
    assert_eq!(email.type_sql, "character varying(200)");
    assert!(email.not_null);
    assert_eq!(email.default.as_deref(), Some("'none'::character varying"));
    assert_eq!(facts.columns[0].identity.as_deref(), Some("a"));
    assert_eq!(facts.columns[4].generated.as_deref(), Some("(score * 2)"));
    assert_eq!(facts.columns[4].default, None);
    assert_eq!(facts.primary_key, ["id"]);

    let index = |name: &str| {
        facts
            .indexes
            .iter()
            .find(|i| i.name == name)
            .unwrap_or_else(|| panic!("index {name} in {:?}", facts.indexes))
    };
    assert_eq!(
        index("users_email_key").constraint.as_deref(),
        Some("users_email_key")
    );
    let partial = index("users_lower_email");
    assert_eq!(partial.columns, ["email", "score"]);
    assert!(
        partial.definition.contains("WHERE (score > 0)"),
        "{}",
        partial.definition
    );
    assert_eq!(partial.constraint, None);

    let kinds: Vec<_> = facts
        .constraints
        .iter()
        .map(|c| (c.on_table.as_str(), c.kind.as_str(), c.columns.join(",")))
        .collect();
    assert!(
        kinds.contains(&("app.\"Users\"", "p", "id".to_owned())),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("app.\"Users\"", "u", "email".to_owned())),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("app.\"Users\"", "c", "score".to_owned())),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("app.\"Users\"", "f", "team_id".to_owned())),
        "{kinds:?}"
    );
    // A foreign key of another table that references this one, with this
    // table's referenced column.
    assert!(
        kinds.contains(&("app.sessions", "f", "id".to_owned())),
        "{kinds:?}"
    );
    assert!(facts.constraints.iter().all(|c| c.validated));

    assert_eq!(facts.triggers, ["touch"]);
    assert_eq!(facts.dependent_views, ["app.emails"]);
    assert_eq!(facts.estimated_rows, 100);
}

#[tokio::test]
async fn a_missing_table_is_a_clear_usage_error() {
    let db = TestDb::new().await;
    let conn = db.connect().await;
    let error = table_facts(&conn, "no_such_table").await.unwrap_err();
    assert_eq!(error.exit_code(), 2);
    assert!(
        error
            .to_string()
            .contains("table no_such_table does not exist"),
        "{error}"
    );
}
