DROP TABLE wishlist_items;
DROP TABLE wishlists;
DROP FUNCTION wishlists_touch_updated_at();
