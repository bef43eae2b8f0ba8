//! Integration tests of the `strata` command line against a real PostgreSQL
//! cluster: one throwaway cluster for this test binary, one fresh database
//! per test. One module per command, as in cargo's testsuite.

mod support;

mod adopt;
mod backfill;
mod backfill_directive;
mod backup;
mod backup_data;
mod bad_input;
mod baseline;
mod bootstrap;
mod catalog;
mod changelog;
mod concurrency;
mod crash;
mod down;
mod down_resume;
mod dump;
mod embedded;
mod environments;
mod example;
mod formats;
mod goto_redo;
mod init_new;
mod lint;
mod local;
mod lock_hold;
mod lock_timeout;
mod monitor;
mod new;
mod no_panic;
mod nontransactional;
mod own_tables;
mod parse_once;
mod plan_exec;
mod plan_new;
mod plan_ops_tables;
mod plan_ops_triggers;
mod plan_run;
mod preflight;
mod repair;
mod replication;
mod rewrites_run;
mod roundtrip;
mod runner_overhead;
mod safe_rewrites;
mod scale;
mod spec;
mod status;
mod table_facts;
mod trace;
mod up;
mod up_monitoring;
mod validate;
mod verify;
