//! The `strata monitor` screen.
//!
//! # `strata monitor --json`
//!
//! One JSON object per snapshot, one per line (JSON Lines), with the keys
//! `at`, `connections` (`[{state, count}]`), `long_queries` and `blocked`
//! (`[{pid, application, state, seconds, query}]`, `blocked` adding
//! `blocked_by: [pid]` beside a `session` object), `locks` (`[{table, mode,
//! granted, waiting}]`), `index_builds` (`[{pid, table, index, command,
//! phase, blocks_done, blocks_total, tuples_done, tuples_total}]`),
//! `vacuums` (`[{pid, table, phase, scanned, total}]`) and `replicas`
//! (`[{name, client, state, replay_lag_secs, lag_bytes}]`).

use super::Style;
use crate::db::activity::{IndexBuild, Snapshot};

/// The screen for one snapshot.
pub fn screen(s: &Snapshot, style: &Style) -> String {
    let mut out = String::new();
    let head = |t: &str| style.paint("1", t);
    out.push_str(&format!("{}  {}\n", head("strata monitor"), s.at));
    let conns: Vec<String> = s
        .connections
        .iter()
        .map(|c| format!("{} {}", c.count, c.state))
        .collect();
    out.push_str(&format!(
        "\n{}  {}\n",
        head("connections"),
        if conns.is_empty() {
            "none".to_owned()
        } else {
            conns.join(", ")
        }
    ));

    out.push_str(&format!("\n{}\n", head("blocked queries")));
    if s.blocked.is_empty() {
        out.push_str("  none\n");
    }
    for b in &s.blocked {
        out.push_str(&format!(
            "  {} pid {:<7} {:>7.1}s  blocked by {}  {}  {}\n",
            style.paint("31", "!"),
            b.session.pid,
            b.session.seconds,
            b.blocked_by
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(","),
            app(&b.session.application),
            b.session.query
        ));
    }

    out.push_str(&format!("\n{}\n", head("longest queries and transactions")));
    if s.long_queries.is_empty() {
        out.push_str("  none\n");
    }
    for q in &s.long_queries {
        out.push_str(&format!(
            "  pid {:<7} {:>7.1}s  {:<20} {}  {}\n",
            q.pid,
            q.seconds,
            q.state,
            app(&q.application),
            q.query
        ));
    }

    out.push_str(&format!("\n{}\n", head("locks on user tables")));
    if s.locks.is_empty() {
        out.push_str("  none\n");
    }
    for l in &s.locks {
        let waiting = if l.waiting > 0 {
            style.paint("31", &format!("{} waiting", l.waiting))
        } else {
            "0 waiting".to_owned()
        };
        out.push_str(&format!(
            "  {:<32} {:<26} {} granted, {}\n",
            l.table, l.mode, l.granted, waiting
        ));
    }

    if !s.index_builds.is_empty() || !s.vacuums.is_empty() {
        out.push_str(&format!("\n{}\n", head("progress")));
        for b in &s.index_builds {
            out.push_str(&format!("  {}\n", index_build(b)));
        }
        for v in &s.vacuums {
            let pct = if v.total > 0 {
                100.0 * v.scanned as f64 / v.total as f64
            } else {
                0.0
            };
            out.push_str(&format!(
                "  VACUUM {} (pid {}): {} {pct:.0}% ({}/{} blocks)\n",
                v.table, v.pid, v.phase, v.scanned, v.total
            ));
        }
    }

    out.push_str(&format!("\n{}  ", head("replication")));
    if s.replicas.is_empty() {
        out.push_str("no replicas\n");
    } else {
        out.push('\n');
        for r in &s.replicas {
            out.push_str(&format!(
                "  {} ({}) {}: replay lag {}, {} bytes behind\n",
                r.name,
                r.client,
                r.state,
                r.replay_lag_secs
                    .map(|l| format!("{l:.1}s"))
                    .unwrap_or_else(|| "0s".into()),
                r.lag_bytes.unwrap_or(0)
            ));
        }
    }
    out
}

fn app(name: &str) -> &str {
    if name.is_empty() {
        "-"
    } else {
        name
    }
}

/// One line about an index build: what, phase, and how far.
pub fn index_build(b: &IndexBuild) -> String {
    let name = if b.index.is_empty() {
        "(index)"
    } else {
        &b.index
    };
    let amount = if b.blocks_total > 0 {
        format!(" ({}/{} blocks)", b.blocks_done, b.blocks_total)
    } else if b.tuples_total > 0 {
        format!(" ({}/{} tuples)", b.tuples_done, b.tuples_total)
    } else {
        String::new()
    };
    format!(
        "{} {name} on {} (pid {}): {}{}{amount}",
        b.command,
        b.table,
        b.pid,
        b.phase,
        b.percent().map(|p| format!(" {p:.0}%")).unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::activity::{Blocked, Session, StateCount, TableLock};

    #[test]
    fn renders_each_section() {
        let s = Snapshot {
            at: "2026-01-01T00:00:00Z".into(),
            connections: vec![StateCount {
                state: "active".into(),
                count: 3,
            }],
            blocked: vec![Blocked {
                session: Session {
                    pid: 7,
                    application: "app".into(),
                    state: "active".into(),
                    seconds: 2.5,
                    query: "SELECT 1".into(),
                },
                blocked_by: vec![5],
            }],
            locks: vec![TableLock {
                table: "public.users".into(),
                mode: "AccessExclusiveLock".into(),
                granted: 1,
                waiting: 2,
            }],
            index_builds: vec![IndexBuild {
                pid: 5,
                table: "users".into(),
                index: "users_email_idx".into(),
                command: "CREATE INDEX CONCURRENTLY".into(),
                phase: "building index: scanning table".into(),
                blocks_done: 50,
                blocks_total: 200,
                tuples_done: 0,
                tuples_total: 0,
            }],
            ..Snapshot::default()
        };
        let text = screen(
            &s,
            &Style {
                color: false,
                quiet: false,
                verbose: false,
            },
        );
        assert!(text.contains("connections  3 active"), "{text}");
        assert!(
            text.contains("pid 7") && text.contains("blocked by 5"),
            "{text}"
        );
        assert!(
            text.contains("public.users") && text.contains("2 waiting"),
            "{text}"
        );
        assert!(text.contains("CREATE INDEX CONCURRENTLY users_email_idx on users (pid 5): building index: scanning table 25% (50/200 blocks)"), "{text}");
        assert!(text.contains("no replicas"), "{text}");
    }
}
