-- The starting point of example 4: orders, looked up by user and date,
-- with only an index on user_id.
CREATE TABLE orders (
  id bigserial PRIMARY KEY,
  user_id bigint NOT NULL,
  total numeric(10,2) NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_user_id_idx ON orders (user_id);
INSERT INTO orders (user_id, total, created_at)
SELECT g % 40 + 1, (g % 97) + 0.99, timestamptz '2024-01-01' + g * interval '7 hours'
FROM generate_series(1, 400) g;
