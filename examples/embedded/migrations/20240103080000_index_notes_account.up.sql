-- Built without blocking writes: runs outside a transaction.
CREATE INDEX CONCURRENTLY notes_account_id_idx ON notes (account_id);
