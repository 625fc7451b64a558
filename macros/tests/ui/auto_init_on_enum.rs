use nequip_macros::auto_init;

#[auto_init]
enum NotAStruct {
    A,
}

fn main() {}
