use nequip_macros::builder;

#[builder(name = Thing, kind = loss, colour = "red")]
struct Thing {}

fn main() {}
