-- Wishlists: a user keeps named lists of products.
CREATE TABLE wishlists (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name text NOT NULL DEFAULT 'My wishlist',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, name)
);

CREATE TABLE wishlist_items (
    wishlist_id bigint NOT NULL REFERENCES wishlists (id) ON DELETE CASCADE,
    product_id bigint NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    added_at timestamptz NOT NULL DEFAULT now(),
    note text,
    PRIMARY KEY (wishlist_id, product_id)
);

CREATE INDEX wishlist_items_product_id_idx ON wishlist_items (product_id);

-- Keep wishlists.updated_at current; the function body holds semicolons,
-- which the PostgreSQL parser keeps inside the statement.
CREATE FUNCTION wishlists_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TRIGGER wishlists_updated_at
    BEFORE UPDATE ON wishlists
    FOR EACH ROW EXECUTE FUNCTION wishlists_touch_updated_at();
