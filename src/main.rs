//! The `stilts` binary: CLI parsing and wiring only; every role is a library function.
fn main() {
    println!("stilts");
}
