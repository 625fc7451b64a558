use nequip_macros::builder;

struct Keys;

#[builder(name = "MyBuilder", kind = model_builder, keys = Keys)]
fn my_builder(_config: u8) {}

fn main() {}
