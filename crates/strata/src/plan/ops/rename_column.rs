//! `rename_column`: a rename the running app never notices.
//!
//! `ALTER TABLE … RENAME COLUMN` is instant, but every app instance that
//! still names the old column fails from that moment until it is
//! redeployed. So the rename takes two steps around app deploys:
//!
//! - `expand`: the new column, of the old one's type, and one sync trigger
//!   that keeps both equal whichever the app writes, then a batched
//!   backfill, NOT NULL through a validated check, the old column's check
//!   constraints and indexes copied onto the new one (indexes
//!   concurrently, unique constraints through a unique index), and a
//!   validation that every row has both equal. The app can now move to the
//!   new name at its own pace.
//! - `contract` (after the deploy gate that retires the old name): in one
//!   short transaction, the trigger and its function go, the old column is
//!   dropped, the new one gets the old default, and the copies take the
//!   originals' names. The end catalog is what the plain rename gives.
//!
//! The trigger, for each row written:
//! - an INSERT that leaves the new column NULL (an app that writes the old
//!   name only, or neither) copies the old value over; any other INSERT
//!   (the new name written, or both) copies the new value to the old
//!   column. The new column has no default until `contract`, so "left
//!   NULL" means "not written";
//! - an UPDATE that changes the new column copies it to the old one (when
//!   both change, the new name wins); any other UPDATE copies the old
//!   column to the new one (which also syncs a row the backfill has not
//!   reached yet).
//!
//! What is not carried, and refused at compile time with a way out
//! (`shadow::refuse_uncarried`): the primary key, foreign keys either way,
//! exclusion constraints, views over the table, identity, generated and
//! sequence-fed columns. What is not carried silently: a column's
//! collation, comments and privileges, statistics targets, and PL/pgSQL
//! bodies that name the column (the plain rename does not fix those
//! either). On PostgreSQL 18, whose NOT NULL constraints have names, the
//! contract gives the new column's the old column's name, which the plain
//! rename keeps, and the reverse gives it back.

use strata_source::sql::names::quote_ident;

use super::super::{Action, CompileError, Compiled, Context};
use super::set_not_null::not_null_via_check;
use super::shadow::{
    carried, column, column_name, facts, has_column, install_trigger, not_null_names,
    refuse_uncarried, remove_trigger, row_keys, step_index, when, Helpers,
};

const OP: &str = "rename_column";

/// The trigger's body: see the module docs.
fn sync_body(old: &str, new: &str) -> String {
    format!(
        "  IF TG_OP = 'INSERT' THEN
    IF NEW.{new} IS NULL THEN NEW.{new} := NEW.{old}; ELSE NEW.{old} := NEW.{new}; END IF;
  ELSIF NEW.{new} IS DISTINCT FROM OLD.{new} THEN
    NEW.{old} := NEW.{new};
  ELSE
    NEW.{new} := NEW.{old};
  END IF;
"
    )
}

/// Compiles one step of `rename_column`.
pub(super) fn compile(
    table: &str,
    from: &str,
    to: &str,
    ctx: &Context<'_>,
) -> Result<Compiled, CompileError> {
    let step = step_index(OP, ctx, &["expand", "contract"])?;
    let facts = facts(OP, ctx)?;
    let (from, to) = (column_name(from), column_name(to));
    let old_col = column(OP, facts, &from)?;
    refuse_uncarried(OP, facts, old_col)?;
    let helpers = Helpers::for_table(ctx, facts, "ren", &[&from, &to]);
    let (old, new) = (quote_ident(&from), quote_ident(&to));
    let carried = carried(OP, facts, &helpers, &from, &new)?;
    let trigger = install_trigger(&helpers, table, &[], &sync_body(&old, &new));
    let same = |a: &str, b: &str| Action::Validate {
        sql: format!(
            "SELECT {} FROM {table} WHERE {a} IS DISTINCT FROM {b} LIMIT 20",
            row_keys(facts)
        ),
        message: format!("rows of {table} whose {a} and {b} differ (first 20 keys)"),
    };

    if step == 0 {
        if facts.columns.iter().any(|c| c.name == to) {
            return Err(CompileError {
                message: format!("`{OP}`: {} already has a column {new}", facts.name),
                help: Some(format!("pick another name, or drop {new} first")),
            });
        }
        let mut first = vec![format!(
            "ALTER TABLE {table} ADD COLUMN {new} {}",
            old_col.type_sql
        )];
        first.extend(trigger);
        let mut up = vec![
            Action::Transaction(first),
            Action::Backfill(format!(
                "UPDATE {table} SET {new} = {old} WHERE {new} IS DISTINCT FROM {old}"
            )),
        ];
        if old_col.not_null {
            up.extend(not_null_via_check(
                table,
                &new,
                &helpers.name("nn"),
                Some(facts),
                false,
            ));
        }
        up.extend(carried.build_copies(table));
        up.push(same(&new, &old));
        let mut down = remove_trigger(&helpers, table);
        down.push(format!("ALTER TABLE {table} DROP COLUMN IF EXISTS {new}"));
        return Ok(Compiled {
            up,
            down: Ok(vec![Action::Transaction(down)]),
            drops_data: false,
        });
    }

    // contract: the facts are the table after `expand`, with both columns.
    let new_col = column(OP, facts, &to).map_err(|e| CompileError {
        message: format!(
            "`{OP}` contract: {} has no column {new}: {}",
            facts.name, e.message
        ),
        help: Some("the expand step must run first".to_owned()),
    })?;
    let mut up = remove_trigger(&helpers, table);
    up.push(format!("ALTER TABLE {table} DROP COLUMN {old}"));
    let nn_names = not_null_names(facts, &from, &to);
    if let Some((kept, given)) = &nn_names {
        up.push(format!(
            "ALTER TABLE {table} RENAME CONSTRAINT {} TO {}",
            quote_ident(given),
            quote_ident(kept)
        ));
    }
    if let Some(d) = &old_col.default {
        up.push(format!(
            "ALTER TABLE {table} ALTER COLUMN {new} SET DEFAULT {d}"
        ));
    }
    up.extend(carried.take_names(table, &helpers));

    // The reverse brings the old column back, filled from the new one, with
    // its default, NOT NULL, checks and indexes under their own names.
    let mut restore = vec![format!(
        "ALTER TABLE {table} ADD COLUMN {old} {}",
        old_col.type_sql
    )];
    if let Some(d) = &old_col.default {
        restore.push(format!(
            "ALTER TABLE {table} ALTER COLUMN {old} SET DEFAULT {d}"
        ));
    }
    if new_col.default.is_none() {
        restore.push(format!(
            "ALTER TABLE {table} ALTER COLUMN {new} DROP DEFAULT"
        ));
    }
    if let Some((kept, given)) = &nn_names {
        restore.push(format!(
            "ALTER TABLE {table} RENAME CONSTRAINT {} TO {}",
            quote_ident(kept),
            quote_ident(given)
        ));
    }
    restore.extend(carried.give_names_back(table, &helpers));
    let mut first = vec![when(&format!("NOT {}", has_column(table, &from)), &restore)];
    first.extend(install_trigger(
        &helpers,
        table,
        &[],
        &sync_body(&old, &new),
    ));
    let mut down = vec![
        Action::Transaction(first),
        Action::Backfill(format!(
            "UPDATE {table} SET {old} = {new} WHERE {old} IS DISTINCT FROM {new}"
        )),
    ];
    if old_col.not_null {
        down.extend(not_null_via_check(
            table,
            &old,
            &helpers.name("onn"),
            Some(facts),
            true,
        ));
    }
    down.extend(carried.build_originals(table));
    down.push(same(&old, &new));
    Ok(Compiled {
        up: vec![Action::Transaction(up)],
        down: Ok(down),
        drops_data: true,
    })
}

#[cfg(test)]
mod tests {
    use super::super::super::{ColumnFacts, ConstraintFacts, IndexFacts, TableFacts};
    use super::*;

    fn users() -> TableFacts {
        let col = |name: &str, type_sql: &str, not_null: bool, default: Option<&str>| ColumnFacts {
            name: name.into(),
            type_sql: type_sql.into(),
            not_null,
            default: default.map(Into::into),
            identity: None,
            generated: None,
        };
        TableFacts {
            name: "public.\"User Data\"".into(),
            columns: vec![
                col("id", "bigint", true, None),
                col("Name", "character varying(100)", true, Some("'x'::character varying")),
            ],
            primary_key: vec!["id".into()],
            indexes: vec![
                IndexFacts {
                    name: "User Data_pkey".into(),
                    definition: "CREATE UNIQUE INDEX \"User Data_pkey\" ON public.\"User Data\" USING btree (id)".into(),
                    columns: vec!["id".into()],
                    constraint: Some("User Data_pkey".into()),
                },
                IndexFacts {
                    name: "User Data_Name_key".into(),
                    definition: "CREATE UNIQUE INDEX \"User Data_Name_key\" ON public.\"User Data\" USING btree (\"Name\")".into(),
                    columns: vec!["Name".into()],
                    constraint: Some("User Data_Name_key".into()),
                },
            ],
            constraints: vec![
                ConstraintFacts {
                    name: "User Data_Name_key".into(),
                    on_table: "public.\"User Data\"".into(),
                    kind: "u".into(),
                    definition: "UNIQUE (\"Name\")".into(),
                    columns: vec!["Name".into()],
                    validated: true,
                },
                ConstraintFacts {
                    name: "name_len".into(),
                    on_table: "public.\"User Data\"".into(),
                    kind: "c".into(),
                    definition: "CHECK ((length((\"Name\")::text) > 0))".into(),
                    columns: vec!["Name".into()],
                    validated: true,
                },
            ],
            ..TableFacts::default()
        }
    }

    fn sql(c: &[Action]) -> String {
        c.iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn expand_adds_syncs_backfills_and_copies() {
        let facts = users();
        let ctx = Context {
            version: "20260301120000",
            step: None,
            table: Some(&facts),
        };
        let c = compile("\"User Data\"", "\"Name\"", "\"Full Name\"", &ctx).unwrap();
        let up = sql(&c.up);
        assert!(
            up.contains("ADD COLUMN \"Full Name\" character varying(100);"),
            "{up}"
        );
        assert!(up.contains("NEW.\"Full Name\" := NEW.\"Name\""), "{up}");
        assert!(
            up.contains("CREATE TRIGGER strata_20260301120000_ren_"),
            "{up}"
        );
        assert!(
            up.contains("UPDATE \"User Data\" SET \"Full Name\" = \"Name\" WHERE"),
            "{up}"
        );
        assert!(
            up.contains("CHECK (\"Full Name\" IS NOT NULL) NOT VALID"),
            "{up}"
        );
        assert!(
            up.contains("CHECK ((length((\"Full Name\")::text) > 0)) NOT VALID"),
            "{up}"
        );
        assert!(
            up.contains("CREATE UNIQUE INDEX CONCURRENTLY strata_20260301120000_ren_"),
            "{up}"
        );
        assert!(up.contains("USING btree (\"Full Name\");"), "{up}");
        assert!(up.contains("UNIQUE USING INDEX"), "{up}");
        assert!(matches!(c.up.last(), Some(Action::Validate { .. })));
        assert!(!c.drops_data);
        let down = sql(c.down.as_ref().unwrap());
        assert!(down.contains("DROP TRIGGER IF EXISTS"), "{down}");
        assert!(
            down.contains("DROP COLUMN IF EXISTS \"Full Name\""),
            "{down}"
        );
        for a in &c.up {
            let Action::Alone(s) = a else { continue };
            for word in s.split_whitespace().filter(|w| w.starts_with("strata_")) {
                assert!(word.len() <= 63, "{word}");
            }
        }
    }

    #[test]
    fn contract_drops_the_old_column_and_takes_the_names() {
        let mut facts = users();
        let mut new = facts.columns[1].clone();
        new.name = "Full Name".into();
        new.default = None;
        facts.columns.push(new);
        let ctx = Context {
            version: "20260301120000",
            step: Some("contract"),
            table: Some(&facts),
        };
        let c = compile("\"User Data\"", "\"Name\"", "\"Full Name\"", &ctx).unwrap();
        assert_eq!(c.up.len(), 1, "one transaction");
        let up = sql(&c.up);
        assert!(
            up.contains("ALTER TABLE \"User Data\" DROP COLUMN \"Name\";"),
            "{up}"
        );
        assert!(
            up.contains("ALTER COLUMN \"Full Name\" SET DEFAULT 'x'::character varying;"),
            "{up}"
        );
        assert!(up.contains("TO \"User Data_Name_key\";"), "{up}");
        assert!(up.contains("TO name_len;"), "{up}");
        assert!(c.drops_data);
        let down = sql(c.down.as_ref().unwrap());
        assert!(
            down.contains("IF NOT EXISTS (SELECT FROM pg_attribute"),
            "{down}"
        );
        assert!(
            down.contains("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS \"User Data_Name_key\""),
            "{down}"
        );
    }

    #[test]
    fn what_cannot_be_carried_is_refused_with_help() {
        let mut facts = users();
        facts.dependent_views = vec!["public.active_users".into()];
        let ctx = Context {
            version: "1",
            step: None,
            table: Some(&facts),
        };
        let e = compile("\"User Data\"", "\"Name\"", "n2", &ctx).unwrap_err();
        assert!(e.message.contains("views depend on the table"), "{e:?}");
        assert!(e.help.is_some());
        let facts = users();
        let ctx = Context {
            version: "1",
            step: None,
            table: Some(&facts),
        };
        let e = compile("\"User Data\"", "id", "key", &ctx).unwrap_err();
        assert!(e.message.contains("primary key"), "{e:?}");
        let mut facts = users();
        facts.constraints.push(ConstraintFacts {
            name: "orders_user_name_fkey".into(),
            on_table: "public.orders".into(),
            kind: "f".into(),
            definition: "FOREIGN KEY (user_name) REFERENCES \"User Data\"(\"Name\")".into(),
            columns: vec!["Name".into()],
            validated: true,
        });
        let ctx = Context {
            version: "1",
            step: None,
            table: Some(&facts),
        };
        let e = compile("\"User Data\"", "\"Name\"", "n2", &ctx).unwrap_err();
        assert!(
            e.message
                .contains("foreign key orders_user_name_fkey uses it"),
            "{e:?}"
        );
        assert!(e.help.unwrap().contains("add_foreign_key"));
        let facts = users();
        let ctx = Context {
            version: "1",
            step: Some("switch"),
            table: Some(&facts),
        };
        assert!(compile("\"User Data\"", "\"Name\"", "n2", &ctx).is_err());
        let ctx = Context {
            version: "1",
            step: None,
            table: None,
        };
        assert!(compile("\"User Data\"", "\"Name\"", "n2", &ctx).is_err());
    }
}
