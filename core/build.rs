// `sqlx::migrate!` embeds the migrations at compile time, but stable Rust cannot tell
// cargo that the macro read those files: without this, an added or edited migration
// leaves a stale copy in the binary until something else in the crate changes.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
