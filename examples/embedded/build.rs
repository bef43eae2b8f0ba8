// Rebuild when a migration is added or removed: `embed_migrations!` makes
// cargo watch the files it embedded, but it cannot watch the directory.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
