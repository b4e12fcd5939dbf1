//! placeholder main for warm build
fn main() {}
