use nequip_macros::auto_init;

#[auto_init(prefix = "")]
struct Opts {
    #[key(defualt = 3)]
    a: i64,
    #[key(kind = nn_module)]
    b: String,
}

fn main() {}
