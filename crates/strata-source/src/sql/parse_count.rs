//! How many scripts [`super::split`] has parsed on this thread.
//!
//! Why: a run parses each migration once and hands the statements along
//! (analysis, estimates, rewrites, backups, dry run, apply); a second parse
//! of the same file is wasted time on a large data file and, before, hid a
//! second copy of the trees in memory. Tests read this counter to prove the
//! single parse. Per thread, so that tests running side by side in one
//! process do not count each other's parses (the engine parses on the
//! thread that drives it).

use std::cell::Cell;

thread_local! {
    static SPLITS: Cell<u64> = const { Cell::new(0) };
}

/// Counts one split (called by [`super::split`]).
pub(super) fn count() {
    SPLITS.with(|c| c.set(c.get() + 1));
}

/// Scripts split on this thread so far. For tests only.
#[doc(hidden)]
pub fn splits() -> u64 {
    SPLITS.with(Cell::get)
}
