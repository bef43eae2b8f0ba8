//! Each batch's SQL, and the controller that sizes batches.

use std::time::Duration;

use super::key::{Key, KeyKind};
use super::spec::BackfillSpec;
use super::BackfillError;

/// Rows in the first batch of a keyset walk: small enough to be quick on
/// any table, the controller grows it from there.
pub const FIRST_ROWS: u64 = 1_000;
/// Bounds of a keyset batch, in rows.
pub const MIN_ROWS: u64 = 10;
/// The largest batch: beyond this a batch's key lookup (`OFFSET`) costs
/// more than it saves in round trips.
pub const MAX_ROWS: u64 = 200_000;
/// Bounds of a ctid batch, in pages.
pub const MAX_PAGES: u64 = 20_000;

/// Keeps each batch near `target`: after each batch the time per unit
/// (row or page) is smoothed (the mean of the old estimate and the new
/// measure), the size becomes `target / time per unit`, and one step moves
/// the size by at most a factor of two, so one slow or fast batch (a
/// checkpoint, a cached page) does not swing it.
#[derive(Debug, Clone)]
pub struct SizeController {
    target: Duration,
    size: u64,
    min: u64,
    max: u64,
    per_unit: Option<f64>,
}

impl SizeController {
    /// Starts at `first`, within `[min, max]`.
    pub fn new(target: Duration, first: u64, min: u64, max: u64) -> SizeController {
        SizeController {
            target,
            size: first.clamp(min, max),
            min,
            max,
            per_unit: None,
        }
    }

    /// The size of the next batch.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// A batch of `units` took `elapsed`.
    pub fn observe(&mut self, units: u64, elapsed: Duration) {
        if units == 0 {
            return;
        }
        let measured = elapsed.as_secs_f64().max(1e-6) / units as f64;
        let per_unit = match self.per_unit {
            Some(old) => (old + measured) / 2.0,
            None => measured,
        };
        self.per_unit = Some(per_unit);
        let ideal = self.target.as_secs_f64() / per_unit;
        let current = self.size as f64;
        let next = ideal.clamp(current / 2.0, current * 2.0);
        self.size = (next.round() as u64).clamp(self.min, self.max);
    }

    /// The batch blocked application queries or could not get its locks:
    /// a quarter of the size, and the estimate follows.
    pub fn shrink(&mut self) {
        self.size = (self.size / 4).clamp(self.min, self.max);
        self.per_unit = Some(self.target.as_secs_f64() / self.size as f64);
    }
}

/// The prepared SQL of a walk.
#[derive(Debug, Clone)]
pub struct BatchSql {
    /// Keyset: the key of the batch's last row: `$1..` last key, then
    /// upper bound, then the offset (size - 1). `None` for ctid.
    pub end_first: Option<String>,
    /// Keyset, after the first batch (a lower bound).
    pub end_next: Option<String>,
    /// The statement for the first batch (keyset: `key <= end`; ctid: every
    /// batch).
    pub first: String,
    /// The statement for later batches (keyset: `last < key <= end`).
    pub next: String,
    /// The later batches' statement with a comment on its parameters,
    /// for the dry run.
    pub display: String,
}

/// Builds the SQL of every batch of `spec` walking `key`.
pub fn sql(spec: &BackfillSpec, key: &Key) -> Result<BatchSql, BackfillError> {
    let q = spec.qualifier();
    let table = spec.keyed_table();
    match key.kind {
        KeyKind::Ctid => {
            let pred = format!(
                "{q}.ctid >= $1::text::tid AND {q}.ctid < $2::text::tid AND age({q}.xmin) > $3::text::int"
            );
            let statement = spec.batched(&pred)?;
            Ok(BatchSql {
                end_first: None,
                end_next: None,
                first: statement.clone(),
                display: format!(
                    "-- $1, $2: the batch's first page and the page after its last, as '(page,0)'; $3: transactions since the start (row versions written since are not walked again)\n{statement}"
                ),
                next: statement,
            })
        }
        KeyKind::PrimaryKey | KeyKind::Unique => {
            let n = key.columns.len();
            let row = key.row(q);
            let bare_row = key.row(table);
            let select = key.text_outputs(table);
            let order = key.order_by(table, "");
            let end_first = format!(
                "SELECT {select} FROM {table} WHERE {bare_row} <= {upper} ORDER BY {order} LIMIT 1 OFFSET ${off}::text::bigint",
                upper = key.params(1),
                off = n + 1
            );
            let end_next = format!(
                "SELECT {select} FROM {table} WHERE {bare_row} > {last} AND {bare_row} <= {upper} ORDER BY {order} LIMIT 1 OFFSET ${off}::text::bigint",
                last = key.params(1),
                upper = key.params(n + 1),
                off = 2 * n + 1
            );
            let first = spec.batched(&format!("{row} <= {}", key.params(1)))?;
            let next = spec.batched(&format!(
                "{row} > {} AND {row} <= {}",
                key.params(1),
                key.params(n + 1)
            ))?;
            let display = format!(
                "-- ${}: the key of the previous batch's last row, ${}: of this batch's last row (the batch size on, or the upper bound)\n{next}",
                if n == 1 { "1".to_owned() } else { format!("1..${n}") },
                if n == 1 { "2".to_owned() } else { format!("{}..${}", n + 1, 2 * n) },
                next = next,
            );
            Ok(BatchSql {
                end_first: Some(end_first),
                end_next: Some(end_next),
                first,
                next,
                display,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn grows_at_most_twofold_toward_the_target() {
        let mut c = SizeController::new(ms(50), 1_000, MIN_ROWS, MAX_ROWS);
        // 1,000 rows in 5 ms: 10,000 would fit, but one step doubles.
        c.observe(1_000, ms(5));
        assert_eq!(c.size(), 2_000);
        c.observe(2_000, ms(10));
        assert_eq!(c.size(), 4_000);
        for _ in 0..20 {
            let took = Duration::from_secs_f64(c.size() as f64 * 5e-6);
            c.observe(c.size(), took);
        }
        assert_eq!(c.size(), 10_000, "settles where a batch takes 50 ms");
    }

    #[test]
    fn shrinks_at_most_by_half_per_batch_and_quarters_on_trouble() {
        let mut c = SizeController::new(ms(50), 8_000, MIN_ROWS, MAX_ROWS);
        c.observe(8_000, ms(800));
        assert_eq!(c.size(), 4_000);
        c.shrink();
        assert_eq!(c.size(), 1_000);
        c.observe(1_000, ms(50));
        assert!((900..=1_100).contains(&c.size()), "{}", c.size());
    }

    #[test]
    fn smooths_one_outlier_and_stays_within_bounds() {
        let mut c = SizeController::new(ms(50), 10_000, MIN_ROWS, MAX_ROWS);
        c.observe(10_000, ms(50));
        assert_eq!(c.size(), 10_000);
        // One batch 10× slower (a checkpoint): the mean of the estimates
        // halves the size, not a tenth of it.
        c.observe(10_000, ms(500));
        assert_eq!(c.size(), 5_000);
        let mut tiny = SizeController::new(ms(50), 100, MIN_ROWS, MAX_ROWS);
        for _ in 0..10 {
            tiny.observe(tiny.size(), Duration::from_secs(5));
        }
        assert_eq!(tiny.size(), MIN_ROWS);
        let mut huge = SizeController::new(ms(50), 100_000, MIN_ROWS, MAX_ROWS);
        for _ in 0..10 {
            huge.observe(huge.size(), Duration::from_micros(1));
        }
        assert_eq!(huge.size(), MAX_ROWS);
        huge.observe(0, Duration::ZERO);
        assert_eq!(huge.size(), MAX_ROWS);
    }
}
