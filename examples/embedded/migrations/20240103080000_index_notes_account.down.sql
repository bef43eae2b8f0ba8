DROP INDEX CONCURRENTLY notes_account_id_idx;
