-- The starting point of example 5: users.full_name, with the edge cases the
-- documents mention: single names, extra spaces, more than two parts.
CREATE TABLE users (
  id bigserial PRIMARY KEY,
  full_name varchar(255) NOT NULL,
  email text NOT NULL
);
INSERT INTO users (full_name, email)
SELECT CASE
         WHEN g % 40 = 0 THEN 'Plato'
         WHEN g % 30 = 0 THEN '  Grace   Hopper  '
         WHEN g % 25 = 0 THEN 'Jean Claude  Van Damme'
         ELSE 'First' || g || ' Last' || g
       END,
       'user' || g || '@example.com'
FROM generate_series(1, 300) g;
