-- The starting point of example 6: orders.user_id without a foreign key,
-- and some orders whose user is gone (orphans).
CREATE TABLE users (
  id bigserial PRIMARY KEY,
  email text NOT NULL
);
CREATE TABLE orders (
  id bigserial PRIMARY KEY,
  user_id bigint NOT NULL,
  total numeric(10,2) NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO users (email) SELECT 'user' || g || '@example.com' FROM generate_series(1, 100) g;
-- Every 25th order points at a user that does not exist: 12 orphans.
INSERT INTO orders (user_id, total)
SELECT CASE WHEN g % 25 = 0 THEN 1000 + g ELSE g % 100 + 1 END, (g % 50) + 0.5
FROM generate_series(1, 300) g;
