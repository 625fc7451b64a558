use nequip_macros::auto_init;

#[auto_init]
struct Conv {
    basis_kwargs: u8,
}

fn main() {}
