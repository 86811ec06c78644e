//! core benches (stub).
fn main() {}
