CREATE TABLE user_preferences (
    user_id bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    locale text NOT NULL DEFAULT 'en',
    currency char(3) NOT NULL DEFAULT 'EUR',
    marketing_emails boolean NOT NULL DEFAULT false,
    settings jsonb NOT NULL DEFAULT '{}'
);
