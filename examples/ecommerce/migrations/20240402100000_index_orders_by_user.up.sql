-- Built without blocking writes to orders. CREATE INDEX CONCURRENTLY cannot
-- run inside a transaction; Strata sees that and runs this file outside one.
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_user_id_created_at_idx
    ON orders (user_id, created_at DESC);
