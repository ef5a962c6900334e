//! `devmodel`: the device-model binary.
fn main() {}
