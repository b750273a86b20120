//! Benchmark placeholder: replaced by the command round-trip benchmark.
fn main() {}
