//! Semantic checks of a parsed plan: every SQL fragment parses as the kind of
//! SQL its key holds, names are unique, and nothing drops data before the app
//! has been deployed without it.
//!
//! Fragments are checked by wrapping them in the smallest statement that
//! gives them their role (`SELECT (expr)`, `SELECT NULL::type`) and asking
//! PostgreSQL's parser for exactly one statement back, so a fragment that
//! closes the wrapper and smuggles in a second statement is refused too.

use std::collections::{HashMap, HashSet};

use super::file::{Gate, Operation, OperationKind, Plan, PlanProblem};

/// Every semantic problem of `plan`; `text` is the file, for lines.
pub fn check(plan: &Plan, _text: &str) -> Vec<PlanProblem> {
    let mut problems = Vec::new();
    if plan.phases.is_empty() {
        problems.push(PlanProblem {
            line: Some(1),
            message: "the plan has no phase".to_owned(),
            help: Some("add at least one [[phase]] with a name and operations".to_owned()),
        });
        return problems;
    }
    let mut names = HashSet::new();
    let mut deployed = false;
    // The step each multi-step operation reached, and in which phase.
    let mut reached: HashMap<(&str, String), (usize, usize)> = HashMap::new();
    let last = plan.phases.len() - 1;
    for (i, phase) in plan.phases.iter().enumerate() {
        let at = |message: String, help: &str| PlanProblem {
            line: Some(phase.line),
            message,
            help: Some(help.to_owned()),
        };
        if phase.name.trim().is_empty() {
            problems.push(at(
                "a phase has an empty name".to_owned(),
                "name each phase (expand, migrate, contract, …)",
            ));
        } else if !names.insert(phase.name.as_str()) {
            problems.push(at(
                format!("two phases are named `{}`", phase.name),
                "phase names are unique within a plan: `status` and `rollback --phase` use them",
            ));
        }
        if phase.operations.is_empty() && phase.gate == Gate::None {
            problems.push(at(
                format!("phase `{}` has no operations and no gate", phase.name),
                "remove it, or give it the gate it stands for",
            ));
        }
        if i == last && phase.gate != Gate::None {
            problems.push(at(
                format!(
                    "the last phase `{}` has a gate ({}), but no phase follows it",
                    phase.name, phase.gate
                ),
                "remove the gate, or add the phase it guards",
            ));
        }
        for op in &phase.operations {
            if op.kind.drops_data() && !deployed {
                problems.push(PlanProblem {
                    line: Some(op.line),
                    message: format!(
                        "`{}` in phase `{}` runs before any deploy gate: the running app may still use what it drops",
                        op.kind.name(),
                        phase.name
                    ),
                    help: Some(
                        "move it to a phase after a gate = { deploy = \"app version that no longer uses it\" }"
                            .to_owned(),
                    ),
                });
            }
            check_step(op, i, &phase.name, deployed, &mut reached, &mut problems);
            check_operation(op, &mut problems);
        }
        if matches!(phase.gate, Gate::Deploy(_)) {
            deployed = true;
        }
    }
    problems
}

/// Which multi-step operation an operation is a step of: its kind and the
/// keys that name what it changes.
fn identity(kind: &OperationKind) -> String {
    use OperationKind as K;
    match kind {
        K::RenameColumn { table, from, .. } => format!("{table}.{from}"),
        K::ChangeColumnType { table, column, .. }
        | K::SplitColumn { table, column, .. }
        | K::NormalizeJson { table, column, .. } => format!("{table}.{column}"),
        other => other.table().unwrap_or_default().to_owned(),
    }
}

/// Checks an operation's `step`: known for its kind, after its previous
/// step in an earlier phase, and a `contract` only after a deploy gate.
fn check_step<'a>(
    op: &'a Operation,
    phase: usize,
    phase_name: &str,
    deployed: bool,
    reached: &mut HashMap<(&'a str, String), (usize, usize)>,
    problems: &mut Vec<PlanProblem>,
) {
    let steps = op.kind.steps();
    let name = op.kind.name();
    let at = |message: String, help: String| PlanProblem {
        line: Some(op.line),
        message,
        help: Some(help),
    };
    if steps.is_empty() {
        if let Some(step) = &op.step {
            problems.push(at(
                format!("`{name}` has no steps, but this one says step = {step:?}"),
                format!("remove `step`: `{name}` runs whole in one phase"),
            ));
        }
        return;
    }
    let step = op.step_name().unwrap_or(steps[0]);
    let Some(index) = steps.iter().position(|s| *s == step) else {
        problems.push(at(
            format!("`{name}` has no step {step:?}"),
            format!("its steps are, in order: {}", steps.join(", ")),
        ));
        return;
    };
    let what = identity(&op.kind);
    let key = (name, what.clone());
    match (index, reached.get(&key)) {
        (0, Some(_)) => problems.push(at(
            format!("`{name}` of {what} starts twice (step {step:?})"),
            format!("each step appears once: {}", steps.join(", ")),
        )),
        (0, None) => {}
        (_, Some(&(prev, prev_phase))) if prev + 1 == index && prev_phase < phase => {}
        (_, Some(&(prev, _))) if prev + 1 == index => problems.push(at(
            format!(
                "step {step:?} of `{name}` of {what} is in the same phase `{phase_name}` as its step {:?}",
                steps[prev]
            ),
            "move it to a later phase, after the gate the app needs between them".to_owned(),
        )),
        (_, _) => problems.push(at(
            format!(
                "step {step:?} of `{name}` of {what} has no step {:?} in an earlier phase",
                steps[index - 1]
            ),
            format!(
                "the steps run in order, each in a later phase: {}",
                steps.join(", ")
            ),
        )),
    }
    if step == "contract" && !deployed {
        problems.push(at(
            format!(
                "step \"contract\" of `{name}` of {what} in phase `{phase_name}` runs before any deploy gate: the running app may still use what it removes"
            ),
            "move it to a phase after a gate = { deploy = \"app version that no longer uses it\" }"
                .to_owned(),
        ));
    }
    reached.insert(key, (index, phase));
}

/// The role a fragment of SQL plays, and how it is wrapped to be parsed.
#[derive(Clone, Copy)]
enum Role {
    Table,
    Column,
    Type,
    Expression,
    Predicate,
    Assignments,
    Query,
    Script,
}

impl Role {
    fn describe(self) -> &'static str {
        match self {
            Role::Table => "a table name",
            Role::Column => "a column name",
            Role::Type => "a type",
            Role::Expression => "an expression",
            Role::Predicate => "a condition",
            Role::Assignments => "assignments (`col = expr, …`)",
            Role::Query => "one query",
            Role::Script => "SQL statements",
        }
    }
}

/// Reports `fragment` (the value of `key`) when it does not parse in `role`.
fn sql(problems: &mut Vec<PlanProblem>, op: &Operation, key: &str, role: Role, fragment: &str) {
    if let Err(why) = parses_as(role, fragment) {
        problems.push(PlanProblem {
            line: Some(op.line),
            message: format!(
                "`{}`: `{key}` must be {}: {why}",
                op.kind.name(),
                role.describe()
            ),
            help: Some(format!(
                "`{key}` = {fragment:?} does not parse; write it as in SQL"
            )),
        });
    }
}

fn check_operation(op: &Operation, problems: &mut Vec<PlanProblem>) {
    use OperationKind as K;
    match &op.kind {
        K::AddColumn {
            table,
            column,
            column_type,
            default,
        } => {
            sql(problems, op, "table", Role::Table, table);
            sql(problems, op, "column", Role::Column, column);
            sql(problems, op, "type", Role::Type, column_type);
            if let Some(d) = default {
                sql(problems, op, "default", Role::Expression, d);
            }
        }
        K::AddRequiredColumn {
            table,
            column,
            column_type,
            default,
            backfill,
        } => {
            sql(problems, op, "table", Role::Table, table);
            sql(problems, op, "column", Role::Column, column);
            sql(problems, op, "type", Role::Type, column_type);
            sql(problems, op, "default", Role::Expression, default);
            if let Some(b) = backfill {
                sql(problems, op, "backfill", Role::Expression, b);
            }
        }
        K::RenameColumn { table, from, to } => {
            sql(problems, op, "table", Role::Table, table);
            sql(problems, op, "from", Role::Column, from);
            sql(problems, op, "to", Role::Column, to);
            if from == to {
                problems.push(PlanProblem {
                    line: Some(op.line),
                    message: format!("`rename_column` renames `{from}` to itself"),
                    help: Some("set `to` to the new name".to_owned()),
                });
            }
        }
        K::ChangeColumnType {
            table,
            column,
            column_type,
            using,
        } => {
            sql(problems, op, "table", Role::Table, table);
            sql(problems, op, "column", Role::Column, column);
            sql(problems, op, "type", Role::Type, column_type);
            if let Some(u) = using {
                sql(problems, op, "using", Role::Expression, u);
            }
        }
        K::SplitColumn {
            table,
            column,
            into,
        }
        | K::NormalizeJson {
            table,
            column,
            columns: into,
            ..
        } => {
            sql(problems, op, "table", Role::Table, table);
            sql(problems, op, "column", Role::Column, column);
            if let K::NormalizeJson { into: child, .. } = &op.kind {
                sql(problems, op, "into", Role::Table, child);
            }
            for c in into {
                sql(problems, op, "column", Role::Column, &c.column);
                sql(problems, op, "type", Role::Type, &c.column_type);
                sql(problems, op, "expression", Role::Expression, &c.expression);
            }
            if into.is_empty() {
                problems.push(PlanProblem {
                    line: Some(op.line),
                    message: format!("`{}` creates no column", op.kind.name()),
                    help: Some(
                        "list the new columns: { column = \"…\", type = \"…\", expression = \"…\" }"
                            .to_owned(),
                    ),
                });
            }
        }
        K::AddIndex {
            table,
            name,
            columns,
            using,
            predicate,
            ..
        } => {
            sql(problems, op, "table", Role::Table, table);
            if let Some(n) = name {
                sql(problems, op, "name", Role::Column, n);
            }
            if let Some(m) = using {
                sql(problems, op, "using", Role::Column, m);
            }
            for c in columns {
                sql(problems, op, "columns", Role::Expression, c);
            }
            if columns.is_empty() {
                problems.push(PlanProblem {
                    line: Some(op.line),
                    message: "`add_index` has no columns".to_owned(),
                    help: Some("columns = [\"email\"] (expressions go in parentheses)".to_owned()),
                });
            }
            if let Some(p) = predicate {
                sql(problems, op, "where", Role::Predicate, p);
            }
        }
        K::SetNotNull { table, column } | K::DropColumn { table, column } => {
            sql(problems, op, "table", Role::Table, table);
            sql(problems, op, "column", Role::Column, column);
        }
        K::SoftDelete {
            table,
            column,
            view,
        } => {
            sql(problems, op, "table", Role::Table, table);
            if let Some(c) = column {
                sql(problems, op, "column", Role::Column, c);
            }
            if let Some(v) = view {
                sql(problems, op, "view", Role::Table, v);
            }
        }
        K::AddJsonbColumn {
            table,
            column,
            default,
            backfill,
            path_indexes,
            ..
        } => {
            sql(problems, op, "table", Role::Table, table);
            sql(problems, op, "column", Role::Column, column);
            if let Some(d) = default {
                sql(problems, op, "default", Role::Expression, d);
            }
            if let Some(b) = backfill {
                sql(problems, op, "backfill", Role::Expression, b);
            }
            for p in path_indexes {
                sql(problems, op, "path_indexes", Role::Expression, p);
            }
        }
        K::AddForeignKey {
            table,
            columns,
            references,
            references_columns,
            name,
            orphans,
            on_delete,
        } => {
            sql(problems, op, "table", Role::Table, table);
            sql(problems, op, "references", Role::Table, references);
            for c in columns.iter().chain(references_columns) {
                sql(problems, op, "columns", Role::Column, c);
            }
            if let Some(n) = name {
                sql(problems, op, "name", Role::Column, n);
            }
            if let super::ForeignKeyOrphans::MoveTo(side) = orphans {
                sql(problems, op, "orphans.move_to", Role::Table, side);
            }
            if let Some(action) = on_delete {
                let wrapped = format!("CREATE TABLE x (a int REFERENCES y ON DELETE {action})");
                if one_statement(&wrapped).is_err() {
                    problems.push(PlanProblem {
                        line: Some(op.line),
                        message: format!("`add_foreign_key`: unknown on_delete action `{action}`"),
                        help: Some(
                            "one of: no action, restrict, cascade, set null, set default"
                                .to_owned(),
                        ),
                    });
                }
            }
            if columns.is_empty()
                || (!references_columns.is_empty() && references_columns.len() != columns.len())
            {
                problems.push(PlanProblem {
                    line: Some(op.line),
                    message: format!(
                        "`add_foreign_key` has {} column(s) referencing {} column(s)",
                        columns.len(),
                        references_columns.len()
                    ),
                    help: Some(
                        "give at least one column, and as many `references_columns` (or none, for the primary key)"
                            .to_owned(),
                    ),
                });
            }
        }
        K::PartitionTable {
            table,
            key,
            from,
            to,
            ..
        } => {
            sql(problems, op, "table", Role::Table, table);
            sql(problems, op, "key", Role::Column, key);
            let date = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
            match (date(from), date(to)) {
                (Some(a), Some(b)) if a < b => {}
                (Some(_), Some(_)) => problems.push(PlanProblem {
                    line: Some(op.line),
                    message: format!("`partition_table`: `from` ({from}) is not before `to` ({to})"),
                    help: Some("partitions cover [from, to)".to_owned()),
                }),
                _ => problems.push(PlanProblem {
                    line: Some(op.line),
                    message: format!(
                        "`partition_table`: `from` and `to` must be dates (YYYY-MM-DD), found {from:?} and {to:?}"
                    ),
                    help: None,
                }),
            }
        }
        K::Backfill {
            table,
            set,
            predicate,
        } => {
            sql(problems, op, "table", Role::Table, table);
            sql(problems, op, "set", Role::Assignments, set);
            if let Some(p) = predicate {
                sql(problems, op, "where", Role::Predicate, p);
            }
        }
        K::Sql { up, down } => {
            sql(problems, op, "up", Role::Script, up);
            if let Some(d) = down {
                sql(problems, op, "down", Role::Script, d);
            }
        }
        K::Validate { sql: query, .. } => sql(problems, op, "sql", Role::Query, query),
        K::DropTable { table } => sql(problems, op, "table", Role::Table, table),
    }
}

/// Checks that `fragment` parses in `role`.
fn parses_as(role: Role, fragment: &str) -> Result<(), String> {
    if fragment.trim().is_empty() {
        return Err("it is empty".to_owned());
    }
    let wrapped = match role {
        Role::Table => format!("SELECT FROM {fragment}"),
        Role::Column => format!("SELECT NULL AS {fragment}"),
        Role::Type => format!("SELECT NULL::{fragment}"),
        Role::Expression => format!("SELECT ({fragment})"),
        Role::Predicate => format!("SELECT WHERE ({fragment})"),
        Role::Assignments => format!("UPDATE t SET {fragment}"),
        Role::Query => {
            one_statement(fragment)?;
            let tree = pg_query::parse(fragment, 0).map_err(|e| e.to_string())?;
            return if tree.statement_types() == ["SelectStmt"] {
                Ok(())
            } else {
                Err("a validation is a SELECT".to_owned())
            };
        }
        Role::Script => {
            return pg_query::parse(fragment, 0)
                .map(|_| ())
                .map_err(|e| e.to_string());
        }
    };
    one_statement(&wrapped)?;
    // The wrapper must still be the statement's shape: `users; DROP …` or a
    // table name with a join would parse, but not as one plain name.
    let tree = pg_query::parse(&wrapped, 0).map_err(|e| e.to_string())?;
    if matches!(role, Role::Table) && tree.tables().len() != 1 {
        return Err("it is not one table name".to_owned());
    }
    Ok(())
}

fn one_statement(sql: &str) -> Result<(), String> {
    let tree = pg_query::parse(sql, 0).map_err(|e| e.to_string())?;
    match tree.protobuf.stmts.len() {
        1 => Ok(()),
        n => Err(format!("it makes {n} statements, not part of one")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::super::{ForeignKeyOrphans, Gate, Interval, OperationKind};

    const SKETCH: &str = r#"
description = "users.email_verified: required boolean, default false"
independent = false

[[phase]]
name = "expand"
operations = [
  { op = "add_column", table = "users", column = "email_verified", type = "boolean", default = "false" },
]
gate = { deploy = "app v1.1, which writes email_verified on every insert and update" }

[[phase]]
name = "migrate"
operations = [
  { op = "backfill", table = "users", set = "email_verified = false", where = "email_verified IS NULL" },
  { op = "validate", sql = "SELECT count(*) = 0 FROM users WHERE email_verified IS NULL", message = "rows still NULL" },
]
gate = "none"

[[phase]]
name = "contract"
operations = [
  { op = "set_not_null", table = "users", column = "email_verified" },
]
"#;

    fn problems(text: &str) -> Vec<String> {
        match parse(text) {
            Ok(_) => Vec::new(),
            Err(ps) => ps.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn the_sketch_parses_into_phases_operations_and_gates() {
        let plan = parse(SKETCH).expect("the sketch is a valid plan");
        assert_eq!(
            plan.phases
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>(),
            ["expand", "migrate", "contract"]
        );
        assert_eq!(
            plan.phases[0].gate,
            Gate::Deploy("app v1.1, which writes email_verified on every insert and update".into())
        );
        assert_eq!(plan.phases[1].gate, Gate::None);
        assert_eq!(plan.phases[2].gate, Gate::None);
        assert_eq!(plan.phases[0].line, 5);
        assert_eq!(plan.phases[1].operations[1].line, 16);
        assert!(matches!(
            &plan.phases[1].operations[0].kind,
            OperationKind::Backfill { predicate: Some(p), .. } if p == "email_verified IS NULL"
        ));
    }

    #[test]
    fn wait_gates_take_a_duration_and_orphan_policies_take_a_side_table() {
        let plan = parse(
            r#"
[[phase]]
name = "fk"
operations = [
  { op = "add_foreign_key", table = "orders", columns = ["user_id"], references = "users", orphans = { move_to = "orphaned_orders" } },
  { op = "partition_table", table = "events", key = "created_at", interval = "quarter", from = "2024-01-01", to = "2025-01-01" },
]
gate = { wait = "24h" }

[[phase]]
name = "done"
operations = [{ op = "sql", up = "SELECT 1", down = "SELECT 2" }]
"#,
        )
        .expect("valid");
        assert_eq!(
            plan.phases[0].gate,
            Gate::Wait(std::time::Duration::from_secs(86_400))
        );
        assert!(matches!(
            &plan.phases[0].operations[0].kind,
            OperationKind::AddForeignKey { orphans: ForeignKeyOrphans::MoveTo(t), .. } if t == "orphaned_orders"
        ));
        assert!(matches!(
            &plan.phases[0].operations[1].kind,
            OperationKind::PartitionTable {
                interval: Interval::Quarter,
                ..
            }
        ));
    }

    #[test]
    fn an_unknown_key_is_reported_with_its_line() {
        let text = SKETCH.replace("default = \"false\"", "defualt = \"false\"");
        let ps = problems(&text);
        assert_eq!(ps.len(), 1, "{ps:?}");
        assert!(
            ps[0].starts_with("line 8: unknown field `defualt`"),
            "{ps:?}"
        );
    }

    #[test]
    fn an_unknown_operation_is_reported_with_its_line() {
        let text = SKETCH.replace("\"set_not_null\"", "\"set_not_nul\"");
        let ps = problems(&text);
        assert_eq!(ps.len(), 1, "{ps:?}");
        assert!(
            ps[0].starts_with("line 23: unknown variant `set_not_nul`"),
            "{ps:?}"
        );
    }

    #[test]
    fn a_drop_before_any_deploy_gate_is_refused() {
        let ps = problems(
            r#"
[[phase]]
name = "expand"
operations = [{ op = "add_column", table = "users", column = "full_name", type = "text" }]
gate = "none"

[[phase]]
name = "contract"
operations = [{ op = "drop_column", table = "users", column = "name" }]
"#,
        );
        assert_eq!(ps.len(), 1, "{ps:?}");
        assert!(
            ps[0].starts_with(
                "line 9: `drop_column` in phase `contract` runs before any deploy gate"
            ),
            "{ps:?}"
        );
    }

    #[test]
    fn every_bad_fragment_is_reported_not_only_the_first() {
        let ps = problems(
            r#"
[[phase]]
name = "one"
operations = [
  { op = "add_column", table = "users", column = "x", type = "not a type at all", default = "1 +" },
  { op = "backfill", table = "users; DROP TABLE users", set = "x = 1" },
  { op = "add_column", table = "users", column = "y", type = "int", default = "1); DROP TABLE users; SELECT (1" },
  { op = "validate", sql = "DELETE FROM users" },
]
"#,
        );
        assert_eq!(ps.len(), 5, "{ps:#?}");
        assert!(
            ps[0].starts_with("line 5: `add_column`: `type` must be a type"),
            "{ps:?}"
        );
        assert!(
            ps[1].starts_with("line 5: `add_column`: `default` must be an expression"),
            "{ps:?}"
        );
        assert!(
            ps[2].starts_with("line 6: `backfill`: `table` must be a table name"),
            "{ps:?}"
        );
        assert!(
            ps[3].starts_with(
                "line 7: `add_column`: `default` must be an expression: it makes 3 statements"
            ),
            "{ps:?}"
        );
        assert!(
            ps[4].starts_with(
                "line 8: `validate`: `sql` must be one query: a validation is a SELECT"
            ),
            "{ps:?}"
        );
    }

    #[test]
    fn gates_are_checked() {
        let missing = SKETCH.replace("gate = \"none\"\n", "");
        let ps = problems(&missing);
        assert_eq!(ps, ["line 12: phase `migrate` has no gate (help: every phase but the last says what must happen before the next: gate = \"none\", gate = { deploy = \"…\" } or gate = { wait = \"24h\" })"]);

        let bad_wait = SKETCH.replace("gate = \"none\"", "gate = { wait = \"a day\" }");
        let ps = problems(&bad_wait);
        assert_eq!(ps.len(), 1);
        assert!(ps[0].starts_with("line 18: gate wait `a day`"), "{ps:?}");

        let trailing = format!("{SKETCH}gate = {{ deploy = \"v2\" }}\n");
        let ps = problems(&trailing);
        assert_eq!(ps.len(), 1);
        assert!(
            ps[0].contains("the last phase `contract` has a gate (deploy: v2)"),
            "{ps:?}"
        );
    }

    #[test]
    fn duplicate_phase_names_and_empty_plans_are_refused() {
        let dup = SKETCH.replace("name = \"migrate\"", "name = \"expand\"");
        assert!(problems(&dup)[0].starts_with("line 12: two phases are named `expand`"));
        assert_eq!(
            problems("description = \"nothing\"\n")[0],
            "line 1: the plan has no phase (help: add at least one [[phase]] with a name and operations)"
        );
    }

    #[test]
    fn every_malformed_operation_is_reported_on_its_own_line() {
        let ps = problems(
            r#"
[[phase]]
name = "one"
operations = [
  { op = "add_column", table = "users", column = "x" },
  { op = "rename_column", table = "users", from = "a", to = "b" },
  { op = "drop_table" },
]
"#,
        );
        assert_eq!(ps.len(), 2, "{ps:#?}");
        assert!(ps[0].starts_with("line 5: missing field `type`"), "{ps:?}");
        assert!(ps[1].starts_with("line 7: missing field `table`"), "{ps:?}");
    }
}

#[cfg(test)]
mod step_tests {
    use super::super::parse;

    fn problems(text: &str) -> Vec<String> {
        match parse(text) {
            Ok(_) => Vec::new(),
            Err(ps) => ps.iter().map(|p| p.to_string()).collect(),
        }
    }

    const RENAME: &str = r#"
[[phase]]
name = "expand"
operations = [
  { op = "rename_column", table = "users", from = "name", to = "full_name" },
]
gate = { deploy = "app v2 reads full_name" }

[[phase]]
name = "contract"
operations = [
  { op = "rename_column", step = "contract", table = "users", from = "name", to = "full_name" },
]
"#;

    #[test]
    fn steps_in_later_phases_after_a_deploy_gate_are_accepted() {
        assert_eq!(problems(RENAME), Vec::<String>::new());
        let plan = parse(RENAME).expect("valid");
        let ops: Vec<_> = plan
            .phases
            .iter()
            .flat_map(|p| &p.operations)
            .map(|o| o.step_name())
            .collect();
        assert_eq!(ops, [Some("expand"), Some("contract")]);
    }

    #[test]
    fn bad_steps_are_reported_on_their_line() {
        let unknown = RENAME.replace("step = \"contract\"", "step = \"shrink\"");
        assert_eq!(
            problems(&unknown),
            ["line 12: `rename_column` has no step \"shrink\" (help: its steps are, in order: expand, contract)"]
        );
        let single = "[[phase]]\nname = \"a\"\noperations = [\n  { op = \"add_column\", step = \"expand\", table = \"t\", column = \"c\", type = \"int\" },\n]\n";
        assert_eq!(
            problems(single),
            ["line 4: `add_column` has no steps, but this one says step = \"expand\" (help: remove `step`: `add_column` runs whole in one phase)"]
        );
        let early = RENAME.replace("deploy = \"app v2 reads full_name\"", "wait = \"1h\"");
        assert_eq!(problems(&early).len(), 1);
        assert!(problems(&early)[0].contains("before any deploy gate"));
        let orphan = RENAME.replace(
            "from = \"name\", to = \"full_name\" },\n]\ngate",
            "from = \"nick\", to = \"full_name\" },\n]\ngate",
        );
        assert!(
            problems(&orphan)[0].contains("has no step \"expand\" in an earlier phase"),
            "{:?}",
            problems(&orphan)
        );
    }
}
