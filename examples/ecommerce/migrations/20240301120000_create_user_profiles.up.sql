CREATE TABLE user_profiles (
    user_id bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    display_name text,
    bio text,
    avatar_url text,
    birth_date date,
    updated_at timestamptz NOT NULL DEFAULT now()
);
