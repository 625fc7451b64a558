//! Proc-macros of nequip-rs. Entry points only; the pipeline is
//! `attr.rs` (parse attributes) → `auto_init.rs` / `builder.rs` (validate + generate).
//!
//! * `#[auto_init(prefix = "...")]` on a struct with named fields: generates the key specs
//!   (name, type, default, doc comment) and the `AutoInit` impl through which the config
//!   resolver fills the struct from prefixed YAML keys (see `nequip_core::config::resolve`).
//! * `#[builder(name = "...", kind = ...)]` on a struct (any kind) or a function (model
//!   builders): registers it in the `nequip_core::registry` with `inventory`.
//!
//! Errors are spanned `syn::Error`s turned into `compile_error!`; the macros never panic.

extern crate proc_macro;

mod attr;
mod auto_init;
mod builder;

use proc_macro::TokenStream;

/// Generate key specs and the `AutoInit` impl for a config struct. See the crate docs.
#[proc_macro_attribute]
pub fn auto_init(args: TokenStream, input: TokenStream) -> TokenStream {
    auto_init::expand(args.into(), input.into())
        .unwrap_or_else(|e| e.to_compile_error())
        .into()
}

/// Register a builder (model builder, dataset, nn module, loss, metric, optimizer, lr scheduler).
#[proc_macro_attribute]
pub fn builder(args: TokenStream, input: TokenStream) -> TokenStream {
    let item: proc_macro2::TokenStream = input.into();
    // On error the item itself is still emitted, so its users type-check and the only
    // error shown is the registration's.
    builder::expand(args.into(), item.clone())
        .unwrap_or_else(|e| {
            let mut out = e.to_compile_error();
            out.extend(item);
            out
        })
        .into()
}
