-- The starting point of example 10: a monolithic orders table whose lines
-- are a JSON array, some empty or missing, and some orders whose user is
-- gone.
CREATE TABLE users (
  id bigserial PRIMARY KEY,
  email text NOT NULL
);
CREATE TABLE products (
  id bigserial PRIMARY KEY,
  name text NOT NULL,
  price numeric(10,2) NOT NULL
);
CREATE TABLE orders (
  id bigserial PRIMARY KEY,
  user_id bigint NOT NULL,
  items jsonb,
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO users (email) SELECT 'user' || g || '@example.com' FROM generate_series(1, 50) g;
INSERT INTO products (name, price) SELECT 'Product ' || g, g + 0.99 FROM generate_series(1, 20) g;
INSERT INTO orders (user_id, items)
SELECT CASE WHEN g % 40 = 0 THEN 500 + g ELSE g % 50 + 1 END,
       CASE
         WHEN g % 31 = 0 THEN NULL
         WHEN g % 17 = 0 THEN '[]'::jsonb
         ELSE (SELECT jsonb_agg(jsonb_build_object(
                 'product_id', (g + k) % 20 + 1,
                 'quantity', k,
                 'unit_price', ((g + k) % 20 + 1) + 0.99))
               FROM generate_series(1, 1 + g % 3) k)
       END
FROM generate_series(1, 200) g;
