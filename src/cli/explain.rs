use crate::cli::{args::Ctx, Outcome};

/// Print a lint rule's full explanation: what it flags, why, the safe
/// rewrite and an example.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The rule id, e.g. require-concurrent-index-creation.
    rule: String,
}

pub fn exec(args: Args, _ctx: &Ctx) -> anyhow::Result<Outcome> {
    let rule = strata::lint::rules::find(&args.rule).ok_or_else(|| strata::Error::Usage {
        message: format!("unknown rule `{}`", args.rule),
        help: "`strata rules` lists every rule".into(),
    })?;
    let m = rule.meta();
    let lock = m
        .lock
        .map(|l| format!("{l}: {}", l.blocks()))
        .unwrap_or_else(|| "none".into());
    strata::report::out(&format!(
        "# {}\n\nrisk: {}\nlock: {lock}\n\n{}",
        m.id, m.risk, m.doc
    ));
    Ok(Outcome::Ok)
}
