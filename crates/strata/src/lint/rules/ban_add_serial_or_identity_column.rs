//! `ban-add-serial-or-identity-column`: adding a serial or identity column to
//! an existing table.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-add-serial-or-identity-column",
    risk: Risk::Medium,
    lock: Some(Lock::AccessExclusive),
    scans: true,
    summary: "adding a serial or identity column rewrites the whole table under an ACCESS EXCLUSIVE lock",
    doc: "## What it does
Flags `ALTER TABLE ... ADD COLUMN` of type `serial`/`bigserial`/`smallserial`, or with `GENERATED ... AS IDENTITY`, on an existing table.

## Why is this bad?
Each existing row needs its own sequence value, so the column default is volatile and PostgreSQL rewrites the table while holding an ACCESS EXCLUSIVE lock.

## Safe rewrite
Add the column nullable, create its sequence (owned by the column, as `serial` does) and set it as the default for new rows, backfill old rows in batches, then add the NOT NULL safely (see `ban-set-not-null`). For an identity column, number the rows from a temporary sequence the same way, then `ADD GENERATED ... AS IDENTITY` and move its sequence past the numbers given.

## Example
```sql
-- before
ALTER TABLE events ADD COLUMN seq bigserial;
-- after
CREATE SEQUENCE events_seq_seq AS bigint;
ALTER TABLE events ADD COLUMN seq bigint;
ALTER SEQUENCE events_seq_seq OWNED BY events.seq;
ALTER TABLE events ALTER COLUMN seq SET DEFAULT nextval('events_seq_seq'::regclass);
-- backfill in batches:
UPDATE events SET seq = DEFAULT WHERE ctid IN (SELECT ctid FROM events WHERE seq IS NULL LIMIT 10000);
-- then NOT NULL through a validated CHECK (see ban-set-not-null)
```",
};

/// See [`META`].
pub struct BanAddSerialOrIdentityColumn;

impl Rule for BanAddSerialOrIdentityColumn {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        let Some((table, cmds)) = ast::alter_table(ctx.node) else { return };
        if !ctx.is_existing(&table) {
            return;
        }
        for cmd in cmds.iter().filter(|c| ast::is(c, AlterTableType::AtAddColumn)) {
            let Some(col) = ast::column_def(cmd) else { continue };
            let ty = col.type_name.as_ref().map(|t| ast::type_of(t).0).unwrap_or_default();
            let serial = matches!(ty.as_str(), "serial" | "bigserial" | "smallserial" | "serial4" | "serial8" | "serial2");
            let identity = ast::column_constraints(col).any(|c| ast::constr_is(c, ConstrType::ConstrIdentity));
            if !serial && !identity {
                continue;
            }
            let kind = if serial { "serial" } else { "identity" };
            let finding = Finding::new(&META, format!("{kind} column {} needs a value for every existing row of {table}: a full rewrite blocking reads and writes", col.colname)).table(table.clone());
            let (fix, complete) = safe_steps(ctx.node, cmd, col, &table, serial);
            out.push(if complete { finding.rewrite(fix) } else { finding.fix(fix) });
        }
    }
}

/// The column added plain (nullable, no default), numbered from a
/// sequence for new rows and in batches for old ones, then made NOT NULL
/// through a validated CHECK; a serial column gets its own sequence as
/// `serial` would (same name and type, owned by the column), an identity
/// column becomes one at the end, from the numbers already given. The
/// statement's other actions stay with the ADD COLUMN. Returns the SQL and
/// whether it ends exactly where the original does (not with an inline
/// PRIMARY KEY, which cannot be added to a column of NULLs, or identity
/// options, which are not carried over).
fn safe_steps(node: &NodeEnum, cmd: &pg_query::protobuf::AlterTableCmd, col: &pg_query::protobuf::ColumnDef, table: &str, serial: bool) -> (String, bool) {
    use crate::lint::rewrite::{alter_replacing, literal, not_null_steps, set_not_null};
    let base = ast::base_name(table);
    let mut parts = names::parts(table);
    parts.pop();
    // Sequences live in the table's schema.
    let qualify = |name: &str| {
        let mut p = parts.clone();
        p.push(name.to_owned());
        names::qualified(&p)
    };
    let c = ast::ident(&col.colname);
    let (ty, _) = col.type_name.as_ref().map(ast::type_of).unwrap_or_default();
    let int_type = match ty.as_str() {
        "bigserial" | "serial8" => "bigint",
        "smallserial" | "serial2" => "smallint",
        "serial" | "serial4" => "integer",
        _ => "",
    };
    let identity = ast::column_constraints(col).find(|k| ast::constr_is(k, ConstrType::ConstrIdentity));
    let primary = ast::column_constraints(col).any(|k| ast::constr_is(k, ConstrType::ConstrPrimary));
    let mut plain = col.clone();
    plain.is_not_null = false;
    plain.raw_default = None;
    plain.identity = String::new();
    plain.constraints.retain(|k| {
        !matches!(&k.node, Some(NodeEnum::Constraint(k)) if ast::constr_is(k, ConstrType::ConstrNotnull)
            || ast::constr_is(k, ConstrType::ConstrDefault)
            || ast::constr_is(k, ConstrType::ConstrIdentity))
    });
    if serial {
        let internal = match int_type {
            "bigint" => "int8",
            "smallint" => "int2",
            _ => "int4",
        };
        let string = |v: &str| pg_query::protobuf::Node { node: Some(NodeEnum::String(pg_query::protobuf::String { sval: v.to_owned() })) };
        plain.type_name = Some(pg_query::protobuf::TypeName {
            names: vec![string("pg_catalog"), string(internal)],
            typemod: -1,
            location: -1,
            ..Default::default()
        });
    }
    let mut cmd_plain = cmd.clone();
    cmd_plain.def = Some(Box::new(pg_query::protobuf::Node { node: Some(NodeEnum::ColumnDef(Box::new(plain))) }));
    let add = alter_replacing(node, cmd, vec![cmd_plain]).unwrap_or_default();
    let not_null = not_null_steps(table, &col.colname, &set_not_null(table, &col.colname));
    if serial {
        // serial's own name for its sequence (`ChooseRelationName`).
        let seq = qualify(&names::object_name(&base, Some(&col.colname), "seq"));
        let sql = format!(
            "CREATE SEQUENCE {seq} AS {int_type};\n{add};\nALTER SEQUENCE {seq} OWNED BY {table}.{c};\nALTER TABLE {table} ALTER COLUMN {c} SET DEFAULT nextval({}::regclass);\n-- then backfill in batches (separate transactions):\nUPDATE {table} SET {c} = DEFAULT WHERE ctid IN (SELECT ctid FROM {table} WHERE {c} IS NULL LIMIT 10000);\n-- then NOT NULL, without a scan under the lock:\n{not_null}",
            literal(&seq)
        );
        return (sql, !primary);
    }
    let Some(identity) = identity else { return (String::new(), false) };
    let how = if identity.generated_when == "d" { "BY DEFAULT" } else { "ALWAYS" };
    let fill = qualify(&names::object_name(&base, Some(&col.colname), "fill_seq"));
    let sql = format!(
        "{add};\nCREATE SEQUENCE {fill};\nALTER TABLE {table} ALTER COLUMN {c} SET DEFAULT nextval({fill_lit}::regclass);\n-- then backfill in batches (separate transactions):\nUPDATE {table} SET {c} = DEFAULT WHERE ctid IN (SELECT ctid FROM {table} WHERE {c} IS NULL LIMIT 10000);\n-- then NOT NULL, without a scan under the lock:\n{not_null}\n-- then, in one transaction, turn the numbering into the identity:\nALTER TABLE {table} ALTER COLUMN {c} DROP DEFAULT;\nALTER TABLE {table} ALTER COLUMN {c} ADD GENERATED {how} AS IDENTITY;\nSELECT setval(pg_get_serial_sequence({t_lit}, {c_lit}), nextval({fill_lit}::regclass));\nDROP SEQUENCE {fill};",
        fill_lit = literal(&fill),
        t_lit = literal(table),
        c_lit = literal(&col.colname),
    );
    (sql, !primary && identity.options.is_empty())
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    /// Issue 11, item 13: serial's own sequence (name, type, owner) and
    /// NOT NULL; identity becomes one at the end.
    #[test]
    fn rewrites_end_like_serial_and_identity() {
        let f = check_fires("ban-add-serial-or-identity-column", "ALTER TABLE \"Sch\".t ADD COLUMN n serial;");
        let fix = f.fix.unwrap();
        assert!(fix.starts_with("CREATE SEQUENCE \"Sch\".t_n_seq AS integer;\nALTER TABLE \"Sch\".t ADD COLUMN n int;\nALTER SEQUENCE \"Sch\".t_n_seq OWNED BY \"Sch\".t.n;"), "{fix}");
        assert!(fix.contains("SET NOT NULL"));
        let f = check_fires("ban-add-serial-or-identity-column", "ALTER TABLE t ADD COLUMN n int GENERATED BY DEFAULT AS IDENTITY;");
        assert!(f.rewrite && f.fix.unwrap().contains("ADD GENERATED BY DEFAULT AS IDENTITY;"));
    }

    #[test]
    fn fires_on_serial_and_identity() {
        check_fires("ban-add-serial-or-identity-column", "ALTER TABLE events ADD COLUMN seq bigserial;");
        check_fires("ban-add-serial-or-identity-column", "ALTER TABLE events ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;");
    }

    #[test]
    fn ok_on_new_tables_and_plain_columns() {
        check_ok("ban-add-serial-or-identity-column", "CREATE TABLE e (id bigint GENERATED ALWAYS AS IDENTITY);");
        check_ok("ban-add-serial-or-identity-column", "ALTER TABLE events ADD COLUMN n bigint;");
    }
}
