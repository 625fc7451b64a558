use nequip_macros::builder;

#[builder(name = "Thing", kind = gizmo)]
struct Thing {}

fn main() {}
