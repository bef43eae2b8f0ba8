-- The starting point of example 9: users, deleted for real today.
CREATE TABLE users (
  id bigserial PRIMARY KEY,
  email text NOT NULL
);
INSERT INTO users (email) SELECT 'user' || g || '@example.com' FROM generate_series(1, 300) g;
