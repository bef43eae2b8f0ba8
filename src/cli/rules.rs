use crate::cli::{args::Ctx, Outcome};

/// List every lint rule with its default risk.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn exec(_args: Args, ctx: &Ctx) -> anyhow::Result<Outcome> {
    if ctx.global.json {
        let rules: Vec<_> = strata::lint::rules::RULES
            .iter()
            .map(|r| {
                let m = r.meta();
                serde_json::json!({"id": m.id, "risk": m.risk, "lock": m.lock.map(|l| l.name()), "summary": m.summary})
            })
            .collect();
        strata::report::out(&serde_json::to_string_pretty(&rules)?);
    } else {
        strata::report::out(&strata::report::lint::rules_table());
    }
    Ok(Outcome::Ok)
}
