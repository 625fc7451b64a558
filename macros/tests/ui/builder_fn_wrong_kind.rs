use nequip_macros::builder;

#[builder(name = "my_loss", kind = loss)]
fn my_loss() {}

fn main() {}
