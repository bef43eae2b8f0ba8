//! `normalize_json`: a JSON array column becomes a child table with one row
//! per element (the design documents' `orders.items` → `order_items`).
//!
//! `expand`:
//! 1. A validation that every value is an array or NULL (a scalar or an
//!    object has no elements; its keys are listed, first 20).
//! 2. One short transaction: the child table (`id` identity key, the
//!    parent's key as `<parent>_<key>` with its foreign key `ON DELETE
//!    CASCADE`, `ordinal`, the element's 1-based place, and the written
//!    columns, each an expression over `elem`), a unique key on (parent
//!    key, ordinal), and a trigger on the parent that replaces a parent's
//!    child rows when a row is inserted or its column updated. The child
//!    table is empty and unknown to the app when it is created, so its
//!    foreign key is valid from the first row and its indexes cost nothing:
//!    NOT VALID → VALIDATE and CONCURRENTLY are for tables that already hold
//!    rows. The unique key's index serves the foreign key's lookups.
//! 3. The batched copy: `INSERT … SELECT … FROM parent,
//!    jsonb_array_elements(col) WITH ORDINALITY … FOR SHARE OF parent ON
//!    CONFLICT DO NOTHING`. The row lock orders each batch with the app's
//!    writes to that parent row. An app update that came first: the batch
//!    waits for it, and PostgreSQL then re-reads the locked row but keeps
//!    the elements it expanded from the old value, so the copy keeps only
//!    elements the new value has at the same place (`elem = col -> i`); the
//!    trigger already wrote those, and they are skipped as conflicts. An app
//!    update that comes after waits for the batch, then its trigger replaces
//!    what the batch wrote. (A test with a concurrent writer found the
//!    first case before the `elem = col -> i` condition was there.)
//! 4. A validation that every parent has as many child rows as elements
//!    (NULL, JSON `null` and `[]` count as none).
//!
//! `contract` (after the app reads the child table): drops the trigger, its
//! function and the JSON column. The column's data is gone (the child rows
//! hold the columns computed from each element, not the element), so its
//! reverse is a backup. The reverse of `expand` drops the trigger, the
//! function and the child table.

use strata_source::plan::NewColumn;

use super::super::{Action, CompileError, Compiled, Context, TableFacts};
use super::table_names::{base, clip, column, facts, helper, sibling, unknown_step};
use crate::sql::names;

/// What `normalize_json` says.
pub(super) struct NormalizeJson<'a> {
    pub table: &'a str,
    pub column: &'a str,
    pub into: &'a str,
    pub columns: &'a [NewColumn],
}

const STEPS: &[&str] = &["expand", "contract"];
const PARENT: &str = "strata_parent";

/// The names both steps use, derived from the plan and the facts.
struct Names {
    /// `json` or `jsonb`: the functions' prefix.
    kind: &'static str,
    /// The parent's key columns, and the child's columns that hold them.
    keys: Vec<(String, String, String)>,
    trigger: String,
    function: String,
}

fn derive(
    op: &NormalizeJson<'_>,
    ctx: &Context<'_>,
    facts: &TableFacts,
) -> Result<Names, CompileError> {
    let json = column(facts, op.column)?;
    let kind = match json.type_sql.as_str() {
        "jsonb" => "jsonb",
        "json" => "json",
        other => {
            return Err(CompileError {
                message: format!(
                    "normalize_json: {}.{} is {other}, not json or jsonb",
                    op.table,
                    names::quote_ident(op.column)
                ),
                help: Some("the column must hold JSON arrays".into()),
            })
        }
    };
    if facts.primary_key.is_empty() {
        return Err(CompileError {
            message: format!(
                "normalize_json: {} has no primary key for the child rows to reference",
                op.table
            ),
            help: Some("add a primary key to the table first".into()),
        });
    }
    let singular = singular(&base(op.table));
    let mut keys = Vec::new();
    for k in &facts.primary_key {
        let c = column(facts, k)?;
        keys.push((
            k.clone(),
            clip(&format!("{singular}_{k}")),
            c.type_sql.clone(),
        ));
    }
    let mut seen: Vec<&str> = vec!["id", "ordinal"];
    seen.extend(keys.iter().map(|k| k.1.as_str()));
    for c in op.columns {
        if seen.contains(&c.column.as_str()) {
            return Err(CompileError {
                message: format!(
                    "normalize_json: the child column `{}` is also one Strata adds (id, ordinal, {})",
                    c.column,
                    keys.iter().map(|k| k.1.as_str()).collect::<Vec<_>>().join(", ")
                ),
                help: Some("rename the column".into()),
            });
        }
        seen.push(&c.column);
    }
    if op.columns.is_empty() {
        return Err(CompileError {
            message: "normalize_json lists no child columns".into(),
            help: Some("write columns = [{ column = \"sku\", type = \"text\", expression = \"elem->>'sku'\" }]".into()),
        });
    }
    let table_base = base(op.table);
    Ok(Names {
        kind,
        keys,
        trigger: helper(ctx.version, &["normalize", &table_base, op.column]),
        function: sibling(
            op.table,
            &helper(ctx.version, &["normalize", &table_base, op.column]),
        ),
    })
}

pub(super) fn compile(op: &NormalizeJson<'_>, ctx: &Context<'_>) -> Result<Compiled, CompileError> {
    let facts = facts(ctx, "normalize_json")?;
    let n = derive(op, ctx, facts)?;
    let drop_sync = vec![
        format!(
            "DROP TRIGGER IF EXISTS {} ON {}",
            names::quote_ident(&n.trigger),
            op.table
        ),
        format!("DROP FUNCTION IF EXISTS {}()", n.function),
    ];
    match ctx.step.unwrap_or("expand") {
        "expand" => {
            let mut down = drop_sync.clone();
            down.push(format!("DROP TABLE IF EXISTS {}", op.into));
            Ok(Compiled {
                up: expand(op, &n),
                down: Ok(vec![Action::Transaction(down)]),
                drops_data: false,
            })
        }
        "contract" => {
            let mut up = drop_sync;
            up.push(format!(
                "ALTER TABLE {} DROP COLUMN {}",
                op.table,
                names::quote_ident(op.column)
            ));
            Ok(Compiled {
                up: vec![Action::Transaction(up)],
                down: Err(format!(
                    "{}.{} was dropped; its arrays cannot be rebuilt from {}, which holds columns \
                     computed from each element: restore the backup taken before this step",
                    op.table,
                    names::quote_ident(op.column),
                    op.into
                )),
                drops_data: true,
            })
        }
        other => Err(unknown_step("normalize_json", other, STEPS)),
    }
}

fn expand(op: &NormalizeJson<'_>, n: &Names) -> Vec<Action> {
    let kind = n.kind;
    let col = names::quote_ident(op.column);
    let key_list = |prefix: &str| {
        n.keys
            .iter()
            .map(|k| format!("{prefix}{}", names::quote_ident(&k.0)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let child_keys = n
        .keys
        .iter()
        .map(|k| names::quote_ident(&k.1))
        .collect::<Vec<_>>()
        .join(", ");
    let new_cols = op
        .columns
        .iter()
        .map(|c| names::quote_ident(&c.column))
        .collect::<Vec<_>>()
        .join(", ");
    let exprs = op
        .columns
        .iter()
        .map(|c| format!("({})", c.expression))
        .collect::<Vec<_>>()
        .join(", ");
    let insert_cols = format!("{child_keys}, ordinal, {new_cols}");
    // The elements of an array; nothing for NULL, JSON null or a non-array.
    let elements = |value: &str| {
        format!(
            "{kind}_array_elements(CASE WHEN {kind}_typeof({value}) = 'array' THEN {value} END) \
             WITH ORDINALITY AS strata_e(elem, ordinal)"
        )
    };
    let shown = key_list(&format!("{PARENT}."));

    let not_array = Action::Validate {
        sql: format!(
            "SELECT {shown}, {kind}_typeof({PARENT}.{col}) AS json_type FROM {} AS {PARENT} \
             WHERE {kind}_typeof({PARENT}.{col}) NOT IN ('array', 'null') LIMIT 20",
            op.table
        ),
        message: format!(
            "these rows of {} hold a JSON value that is not an array in {col}: fix them or set \
             them to NULL or '[]' first",
            op.table
        ),
    };

    let mut defs = vec!["id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY".to_owned()];
    for k in &n.keys {
        defs.push(format!("{} {} NOT NULL", names::quote_ident(&k.1), k.2));
    }
    defs.push("ordinal bigint NOT NULL".into());
    for c in op.columns {
        defs.push(format!(
            "{} {}",
            names::quote_ident(&c.column),
            c.column_type
        ));
    }
    defs.push(format!(
        "FOREIGN KEY ({child_keys}) REFERENCES {} ({}) ON DELETE CASCADE",
        op.table,
        key_list("")
    ));
    defs.push(format!("UNIQUE ({child_keys}, ordinal)"));
    let create = format!("CREATE TABLE {} ({})", op.into, defs.join(", "));

    let match_old = n
        .keys
        .iter()
        .map(|k| {
            format!(
                "{} = OLD.{}",
                names::quote_ident(&k.1),
                names::quote_ident(&k.0)
            )
        })
        .collect::<Vec<_>>()
        .join(" AND ");
    let function = format!(
        "CREATE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS $strata_sync$\n\
         BEGIN\n\
         IF TG_OP = 'UPDATE' THEN\n\
         DELETE FROM {} WHERE {match_old};\n\
         END IF;\n\
         INSERT INTO {} ({insert_cols}) SELECT {}, strata_e.ordinal, {exprs} FROM {};\n\
         RETURN NULL;\n\
         END\n\
         $strata_sync$",
        n.function,
        op.into,
        op.into,
        key_list("NEW."),
        elements(&format!("NEW.{col}")),
    );
    let trigger = format!(
        "CREATE TRIGGER {} AFTER INSERT OR UPDATE OF {col} ON {} FOR EACH ROW EXECUTE FUNCTION {}()",
        names::quote_ident(&n.trigger),
        op.table,
        n.function
    );
    // When a batch waits for an app write to a row, PostgreSQL re-reads
    // the locked row but keeps the elements it expanded from the old value
    // (only locked relations are re-read): the condition keeps the elements
    // the new value still has at their place, which the app's trigger also
    // wrote (the conflicts skip them), and drops the others.
    let same_elem = match kind {
        "jsonb" => format!("strata_e.elem = {PARENT}.{col} -> (strata_e.ordinal - 1)::int"),
        _ => format!("strata_e.elem::text = ({PARENT}.{col} -> (strata_e.ordinal - 1)::int)::text"),
    };
    let copy = format!(
        "INSERT INTO {} ({insert_cols}) SELECT {shown}, strata_e.ordinal, {exprs} \
         FROM {} AS {PARENT}, {} WHERE {same_elem} \
         FOR SHARE OF {PARENT} ON CONFLICT ({child_keys}, ordinal) DO NOTHING",
        op.into,
        op.table,
        elements(&format!("{PARENT}.{col}")),
    );
    let expected = format!(
        "CASE WHEN {kind}_typeof({PARENT}.{col}) = 'array' THEN {kind}_array_length({PARENT}.{col}) ELSE 0 END"
    );
    let child_match = n
        .keys
        .iter()
        .map(|k| {
            format!(
                "strata_c.{} = {PARENT}.{}",
                names::quote_ident(&k.1),
                names::quote_ident(&k.0)
            )
        })
        .collect::<Vec<_>>()
        .join(" AND ");
    let found = format!(
        "(SELECT count(*) FROM {} AS strata_c WHERE {child_match})",
        op.into
    );
    let counts = Action::Validate {
        sql: format!(
            "SELECT {shown}, {expected} AS elements, {found} AS child_rows FROM {} AS {PARENT} \
             WHERE {expected} <> {found} LIMIT 20",
            op.table
        ),
        message: format!(
            "these rows of {} have a different number of rows in {} than elements in {col}",
            op.table, op.into
        ),
    };
    vec![
        not_array,
        Action::Transaction(vec![create, function, trigger]),
        Action::Backfill(copy),
        counts,
    ]
}

/// `orders` → `order`, `addresses` → `addresse`: a plain trailing `s`
/// dropped (not `ss`), nothing else. Simple and predictable; the child's
/// key column is `<this>_<key>` (`order_id`).
fn singular(name: &str) -> String {
    if name.ends_with('s') && !name.ends_with("ss") && name.len() > 1 {
        name[..name.len() - 1].to_owned()
    } else {
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::ColumnFacts;
    use super::*;

    fn col(name: &str, ty: &str) -> ColumnFacts {
        ColumnFacts {
            name: name.into(),
            type_sql: ty.into(),
            not_null: name == "id",
            default: None,
            identity: None,
            generated: None,
        }
    }

    fn orders(name: &str, json: &str) -> TableFacts {
        TableFacts {
            name: name.into(),
            columns: vec![col("id", "bigint"), col("items", json)],
            primary_key: vec!["id".into()],
            ..TableFacts::default()
        }
    }

    fn item_cols() -> Vec<NewColumn> {
        vec![NewColumn {
            column: "sku".into(),
            column_type: "text".into(),
            expression: "elem->>'sku'".into(),
        }]
    }

    fn ctx<'a>(f: &'a TableFacts, step: Option<&'a str>) -> Context<'a> {
        Context {
            version: "20260301120000",
            step,
            table: Some(f),
        }
    }

    #[test]
    fn expand_creates_child_trigger_copy_and_checks() {
        let f = orders("public.orders", "jsonb");
        let cols = item_cols();
        let op = NormalizeJson {
            table: "orders",
            column: "items",
            into: "order_items",
            columns: &cols,
        };
        let c = compile(&op, &ctx(&f, None)).unwrap();
        assert_eq!(c.up.len(), 4);
        let Action::Transaction(tx) = &c.up[1] else {
            panic!("{:?}", c.up[1])
        };
        assert_eq!(
            tx[0],
            "CREATE TABLE order_items (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, order_id bigint NOT NULL, ordinal bigint NOT NULL, sku text, FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE, UNIQUE (order_id, ordinal))"
        );
        assert!(tx[1].starts_with("CREATE FUNCTION strata_20260301120000_normalize_orders_items()"));
        assert!(tx[1].contains("DELETE FROM order_items WHERE order_id = OLD.id;"));
        assert_eq!(
            tx[2],
            "CREATE TRIGGER strata_20260301120000_normalize_orders_items AFTER INSERT OR UPDATE OF items ON orders FOR EACH ROW EXECUTE FUNCTION strata_20260301120000_normalize_orders_items()"
        );
        let Action::Backfill(copy) = &c.up[2] else {
            panic!()
        };
        assert!(
            copy.contains("FOR SHARE OF strata_parent ON CONFLICT (order_id, ordinal) DO NOTHING")
        );
        crate::engine::backfill::BackfillSpec::from_sql(copy).unwrap();
        for a in &c.up {
            if let Action::Validate { sql, .. } = a {
                pg_query::parse(sql, 0).unwrap();
            }
        }
        for s in tx {
            pg_query::parse(s, 0).unwrap();
        }
        assert_eq!(
            c.down,
            Ok(vec![Action::Transaction(vec![
                "DROP TRIGGER IF EXISTS strata_20260301120000_normalize_orders_items ON orders"
                    .into(),
                "DROP FUNCTION IF EXISTS strata_20260301120000_normalize_orders_items()".into(),
                "DROP TABLE IF EXISTS order_items".into(),
            ])])
        );
        assert!(!c.drops_data);
    }

    #[test]
    fn contract_drops_the_column_and_has_no_reverse() {
        let f = orders("public.orders", "json");
        let cols = item_cols();
        let op = NormalizeJson {
            table: "orders",
            column: "items",
            into: "order_items",
            columns: &cols,
        };
        let c = compile(&op, &ctx(&f, Some("contract"))).unwrap();
        assert!(c.drops_data);
        assert!(c.down.is_err());
        assert!(c.up[0]
            .to_string()
            .contains("ALTER TABLE orders DROP COLUMN items"));
        let e = compile(&op, &ctx(&f, Some("swap"))).unwrap_err();
        assert!(e.message.contains("no step `swap`"));
    }

    #[test]
    fn odd_names_json_type_and_errors() {
        let mut f = orders("app.\"User Data\"", "json");
        f.columns[1].name = "Line Items".into();
        let cols = item_cols();
        let op = NormalizeJson {
            table: "app.\"User Data\"",
            column: "Line Items",
            into: "app.\"User Items\"",
            columns: &cols,
        };
        let c = compile(&op, &ctx(&f, None)).unwrap();
        let text = c.up[1].to_string();
        assert!(text.contains("\"User Data_id\" bigint NOT NULL"), "{text}");
        assert!(text.contains("json_array_elements(CASE WHEN json_typeof(NEW.\"Line Items\")"));
        assert!(
            text.contains(
                "CREATE FUNCTION app.\"strata_20260301120000_normalize_User Data_Line Items\"()"
            ),
            "{text}"
        );

        let text_col = orders("t", "text");
        let op2 = NormalizeJson {
            table: "t",
            column: "items",
            into: "c",
            columns: &cols,
        };
        assert!(compile(&op2, &ctx(&text_col, None)).is_err());
        let clash = vec![NewColumn {
            column: "ordinal".into(),
            column_type: "int".into(),
            expression: "1".into(),
        }];
        let f = orders("orders", "jsonb");
        let op3 = NormalizeJson {
            table: "orders",
            column: "items",
            into: "c",
            columns: &clash,
        };
        assert!(compile(&op3, &ctx(&f, None)).is_err());
    }
}
