use nequip_macros::builder;

struct Keys;
struct Other;

#[builder(name = "MyBuilder", kind = model_builder)]
fn my_builder(config: u8, keys: Keys, other: Other) {}

fn main() {}
