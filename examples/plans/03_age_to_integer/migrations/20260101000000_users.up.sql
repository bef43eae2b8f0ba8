-- The starting point of example 3: users.age stored as text, with the edge
-- cases the documents mention: blanks, padding, words, NULL.
CREATE TABLE users (
  id bigserial PRIMARY KEY,
  email text NOT NULL,
  age varchar(10)
);
INSERT INTO users (email, age)
SELECT 'user' || g || '@example.com',
       CASE
         WHEN g % 50 = 0 THEN 'unknown'
         WHEN g % 37 = 0 THEN ''
         WHEN g % 29 = 0 THEN ' ' || (g % 80) || ' '
         WHEN g % 23 = 0 THEN NULL
         ELSE (18 + g % 60)::text
       END
FROM generate_series(1, 300) g;
