use nequip_macros::builder;

struct Keys;
struct Other;

#[builder(name = "MyBuilder", kind = model_builder)]
fn my_builder(_config: u8, _keys: Keys, _other: Other) {}

fn main() {}
