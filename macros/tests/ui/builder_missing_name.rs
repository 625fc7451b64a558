use nequip_macros::builder;

#[builder(kind = loss)]
struct NoName {}

fn main() {}
