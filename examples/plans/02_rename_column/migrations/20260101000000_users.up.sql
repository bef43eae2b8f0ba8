-- The starting point of example 2: users.name, which is to become full_name.
CREATE TABLE users (
  id bigserial PRIMARY KEY,
  name varchar(255) NOT NULL,
  email text NOT NULL
);
CREATE INDEX users_name_idx ON users (name);
INSERT INTO users (name, email)
SELECT 'User ' || g, 'user' || g || '@example.com' FROM generate_series(1, 300) g;
