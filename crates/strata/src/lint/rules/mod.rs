//! The rule catalogue. One file per rule, named after its id
//! (`require-concurrent-index-creation` ↔ `require_concurrent_index_creation.rs`);
//! registering a rule is one line in [`RULES`], kept sorted by id.

macro_rules! rules {
    ($($module:ident :: $rule:ident),* $(,)?) => {
        $(pub mod $module;)*
        /// Every rule, sorted by id.
        pub static RULES: &[&dyn super::Rule] = &[$(&$module::$rule),*];
    };
}

rules! {
    ban_add_serial_or_identity_column::BanAddSerialOrIdentityColumn,
    ban_char_type::BanCharType,
    ban_cluster::BanCluster,
    ban_column_type_change::BanColumnTypeChange,
    ban_concurrently_in_transaction::BanConcurrentlyInTransaction,
    ban_create_trigger_on_existing_table::BanCreateTriggerOnExistingTable,
    ban_domain_constraint::BanDomainConstraint,
    ban_drop_column::BanDropColumn,
    ban_drop_constraint::BanDropConstraint,
    ban_drop_database::BanDropDatabase,
    ban_drop_not_null::BanDropNotNull,
    ban_drop_schema::BanDropSchema,
    ban_drop_table::BanDropTable,
    ban_exclusion_constraint::BanExclusionConstraint,
    ban_long_identifier::BanLongIdentifier,
    ban_rename_column::BanRenameColumn,
    ban_rename_enum_value::BanRenameEnumValue,
    ban_rename_schema::BanRenameSchema,
    ban_rename_table::BanRenameTable,
    ban_self_undoing_migration::BanSelfUndoingMigration,
    ban_set_logged_unlogged::BanSetLoggedUnlogged,
    ban_set_not_null::BanSetNotNull,
    ban_statements_after_access_exclusive::BanStatementsAfterAccessExclusive,
    ban_stored_generated_column::BanStoredGeneratedColumn,
    ban_truncate::BanTruncate,
    ban_truncate_cascade::BanTruncateCascade,
    ban_unbalanced_transaction::BanUnbalancedTransaction,
    ban_unbatched_update_delete::BanUnbatchedUpdateDelete,
    ban_unique_on_existing_data::BanUniqueOnExistingData,
    ban_vacuum_full::BanVacuumFull,
    ban_validate_in_same_transaction::BanValidateInSameTransaction,
    ban_volatile_default::BanVolatileDefault,
    prefer_bigint::PreferBigint,
    prefer_identity::PreferIdentity,
    prefer_jsonb::PreferJsonb,
    prefer_single_alter::PreferSingleAlter,
    prefer_text::PreferText,
    prefer_timestamptz::PreferTimestamptz,
    require_concurrent_detach_partition::RequireConcurrentDetachPartition,
    require_concurrent_index_creation::RequireConcurrentIndexCreation,
    require_concurrent_index_deletion::RequireConcurrentIndexDeletion,
    require_concurrent_reindex::RequireConcurrentReindex,
    require_default_for_not_null_column::RequireDefaultForNotNullColumn,
    require_enum_value_position::RequireEnumValuePosition,
    require_fk_covering_index::RequireFkCoveringIndex,
    require_not_valid_constraint::RequireNotValidConstraint,
    require_timeouts::RequireTimeouts,
    require_unique_index_for_constraint::RequireUniqueIndexForConstraint,
    syntax_error::SyntaxError,
    unanalysed_statement::UnanalysedStatement,
    unused_allow::UnusedAllow,
}

/// Looks a rule up by id.
pub fn find(id: &str) -> Option<&'static dyn super::Rule> {
    RULES.iter().copied().find(|r| r.meta().id == id)
}

/// What rule files import.
pub(crate) mod prelude {
    pub use crate::lint::context::StmtCtx;
    pub use crate::lint::{ast, Finding, Lock, Risk, Rule, RuleMeta};
    pub use crate::sql::names;
    pub use pg_query::protobuf::{AlterTableType, ConstrType, ObjectType};
    pub use pg_query::NodeEnum;
}

#[cfg(test)]
mod tests {
    use super::RULES;

    #[test]
    fn rules_are_sorted_unique_and_named_after_their_files() {
        let ids: Vec<&str> = RULES.iter().map(|r| r.meta().id).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(
            ids, sorted,
            "RULES must be sorted by id, without duplicates"
        );
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lint/rules");
        for id in ids {
            let file = dir.join(format!("{}.rs", id.replace('-', "_")));
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|_| panic!("{id}: no file {}", file.display()));
            assert!(
                text.contains("check_fires(") || text.contains("fires"),
                "{id}: no firing test"
            );
            assert!(
                text.contains("check_ok(") || text.contains("_ok"),
                "{id}: no passing test"
            );
        }
    }

    /// A rule that offers drop-in rewrites (`Finding::rewrite`) shows the
    /// statement it rewrites in its example, between `-- before` and
    /// `-- after`: `tests/cli/rewrites_run.rs` runs that statement and its
    /// rewrite on a real cluster, so a new rule with a rewrite is covered.
    #[test]
    fn rules_with_rewrites_show_the_statement_they_rewrite() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lint/rules");
        for rule in RULES {
            let meta = rule.meta();
            let file = dir.join(format!("{}.rs", meta.id.replace('-', "_")));
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            if !text.contains(".rewrite(") {
                continue;
            }
            let example = meta.doc.split("## Example").nth(1).unwrap_or_default();
            let before = example.find("-- before");
            let after = example.find("-- after");
            assert!(
                matches!((before, after), (Some(b), Some(a)) if b < a),
                "{}: offers a rewrite, so its example needs `-- before` (the statement) and `-- after`",
                meta.id
            );
        }
    }

    #[test]
    fn every_rule_documents_what_why_rewrite_and_example() {
        for rule in RULES {
            let meta = rule.meta();
            for section in [
                "## What it does",
                "## Why is this bad?",
                "## Safe rewrite",
                "## Example",
            ] {
                assert!(meta.doc.contains(section), "{} lacks {section}", meta.id);
            }
            assert!(
                !meta.summary.is_empty() && !meta.summary.ends_with('.'),
                "{}: summary",
                meta.id
            );
        }
    }
}
