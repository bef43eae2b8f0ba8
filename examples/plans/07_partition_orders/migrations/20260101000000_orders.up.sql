-- The starting point of example 7: orders, to be range-partitioned by
-- created_at. A partitioned table enforces uniqueness per partition, so its
-- primary key must hold the partition key: this one is (id, created_at).
CREATE TABLE orders (
  id bigserial,
  user_id bigint NOT NULL,
  total numeric(10,2) NOT NULL CHECK (total >= 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (id, created_at)
);
CREATE INDEX orders_user_id_idx ON orders (user_id);
-- 2024 and early 2025: the 2025 rows land in the default partition.
INSERT INTO orders (user_id, total, created_at)
SELECT g % 40 + 1, (g % 97) + 0.99, timestamptz '2024-01-01 00:00+00' + g * interval '1 day'
FROM generate_series(0, 419) g;
