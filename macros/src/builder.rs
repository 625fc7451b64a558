//! `#[builder(name = "...", kind = ..., aliases = [...], crate = path)]`: registration.
//!
//! * On a struct: any kind. The struct implements `AutoInit` (usually via `#[auto_init]`) for its
//!   keys — or names another struct that does with `keys = Type` — and `Component<kind::K>` for
//!   its factory. Like a Python class in nequip, its name is an
//!   implicit key prefix (`BesselBasis_trainable`).
//! * On a function: `kind = model_builder` only. Parameters are injected by name exactly like
//!   nequip's `model_from_config`: `config`, `initialize`, `dataset`, `deploy`, `model`,
//!   `graph_model`; at most one further parameter whose type implements `AutoInit` is resolved
//!   from the config. Like a Python function in nequip, it gets no implicit class-name prefix.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{FnArg, Item, Pat};

use crate::attr;
use crate::auto_init::kind_variant;

const ARGS: &[&str] = &["name", "kind", "aliases", "keys", "crate"];
const INJECTED: &[(&str, &str)] = &[
    ("config", "Config"),
    ("initialize", "Initialize"),
    ("dataset", "Dataset"),
    ("deploy", "Deploy"),
    ("model", "Model"),
    ("graph_model", "GraphModel"),
];

pub fn expand(args: TokenStream, input: TokenStream) -> syn::Result<TokenStream> {
    let args = attr::parse_args(args)?;
    attr::check_names(&args, ARGS, "builder")?;
    let krate = attr::crate_path(&args)?;
    let item: Item = syn::parse2(input)?;
    let item_span = match &item {
        Item::Fn(f) => f.sig.ident.span(),
        Item::Struct(s) => s.ident.span(),
        _ => proc_macro2::Span::call_site(),
    };
    let name = match attr::find(&args, "name") {
        Some(a) => attr::lit_str(a)?,
        None => return Err(syn::Error::new(item_span, "#[builder] needs `name = \"...\"` (the name users write in YAML)")),
    };
    if name.value().trim().is_empty() || name.value().contains(char::is_whitespace) {
        return Err(syn::Error::new(name.span(), "builder name must be non-empty and contain no whitespace"));
    }
    let kind_ident = match attr::find(&args, "kind") {
        Some(a) => attr::ident(a)?,
        None => return Err(syn::Error::new(item_span, "#[builder] needs `kind = ...` (model_builder, dataset, nn_module, loss, metric, optimizer or lr_scheduler)")),
    };
    let kind = kind_variant(&kind_ident)?;
    let aliases = match attr::find(&args, "aliases") {
        Some(a) => attr::str_list(a)?,
        None => Vec::new(),
    };

    let (doc, keys, prefix, class_prefix, factory, extra) = match &item {
        Item::Struct(s) => {
            let ty = &s.ident;
            if !s.generics.params.is_empty() {
                return Err(syn::Error::new_spanned(&s.generics, "#[builder] structs cannot be generic (a registration names one concrete type)"));
            }
            let keys_ty = match attr::find(&args, "keys") {
                Some(a) => {
                    let p = attr::path(a)?;
                    quote!(#p)
                }
                None => quote!(#ty),
            };
            (
                attr::doc_string(&s.attrs),
                quote!(<#keys_ty as #krate::config::AutoInit>::KEYS),
                quote!(<#keys_ty as #krate::config::AutoInit>::PREFIX),
                true,
                quote!(&<#ty as #krate::registry::Component<#krate::registry::kind::#kind>>::FACTORY),
                quote!(),
            )
        }
        Item::Fn(f) => {
            if let Some(a) = attr::find(&args, "keys") {
                return Err(syn::Error::new(a.name.span(), "`keys` is for structs; a model builder function takes its keys as a parameter"));
            }
            if kind != "ModelBuilder" {
                return Err(syn::Error::new(
                    kind_ident.span(),
                    format!("a function can only be registered as `kind = model_builder`; register a `{kind_ident}` on a struct that implements `Component`"),
                ));
            }
            let (keys, prefix, factory, extra) = model_builder_fn(f, &krate)?;
            (attr::doc_string(&f.attrs), keys, prefix, false, factory, extra)
        }
        other => return Err(syn::Error::new_spanned(other, "#[builder] can be used on a struct or a function")),
    };
    let alias_tokens = aliases.iter();
    Ok(quote! {
        #item
        const _: () = {
            #extra
            #krate::__private::inventory::submit! {
                #krate::registry::Registration {
                    kind: #krate::registry::Kind::#kind,
                    name: #name,
                    aliases: &[#(#alias_tokens),*],
                    doc: #doc,
                    keys: #keys,
                    prefix: #prefix,
                    class_prefix: #class_prefix,
                    krate: ::core::env!("CARGO_PKG_NAME"),
                    module_path: ::core::module_path!(),
                    file: ::core::file!(),
                    line: ::core::line!(),
                    factory: #factory,
                }
            }
        };
    })
}

/// Injection wrapper and `ModelBuilderFactory` for a model-builder function.
fn model_builder_fn(f: &syn::ItemFn, krate: &TokenStream) -> syn::Result<(TokenStream, TokenStream, TokenStream, TokenStream)> {
    let fname = &f.sig.ident;
    if let Some(r) = f.sig.receiver() {
        return Err(syn::Error::new_spanned(r, "a model builder is a free function, not a method"));
    }
    if !f.sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(&f.sig.generics, "a model builder function cannot be generic"));
    }
    // Each injected value is bound to a local first (the config borrow is taken last), so a
    // builder can take `config` together with values computed from the context.
    let mut call_args = Vec::new();
    let mut bindings = Vec::new();
    let mut params = Vec::new();
    let mut auto: Option<syn::Type> = None;
    let mut dataset_required = false;
    for input in &f.sig.inputs {
        let FnArg::Typed(pt) = input else { continue };
        let Pat::Ident(pi) = &*pt.pat else {
            return Err(syn::Error::new_spanned(&pt.pat, "model builder parameters must be plain names (they are injected by name)"));
        };
        let pname = pi.ident.to_string();
        let pname = pname.trim_start_matches('_');
        let ty = &pt.ty;
        match INJECTED.iter().find(|(n, _)| *n == pname) {
            Some((n, variant)) => {
                let v = syn::Ident::new(variant, pi.ident.span());
                params.push(quote!(#krate::registry::Inject::#v));
                let local = syn::Ident::new(&format!("__arg_{n}"), pi.ident.span());
                let value = match *n {
                    "config" => {
                        call_args.push(quote!(&mut *__ctx.config));
                        continue;
                    }
                    "initialize" => quote!(__ctx.initialize),
                    "deploy" => quote!(__ctx.deploy),
                    "dataset" if is_option(ty) => quote!(__ctx.dataset()),
                    "dataset" => {
                        dataset_required = true;
                        quote!(__ctx.dataset().ok_or_else(|| #krate::registry::BuildError::Invalid { builder: __ctx.builder.into(), message: "requires the training dataset (nequip: initialize with a dataset)".into() })?)
                    }
                    "model" => quote!(__ctx.take_model()?),
                    _ => quote!(__ctx.take_graph_model()?),
                };
                bindings.push(quote!(let #local = #value;));
                call_args.push(quote!(#local));
            }
            None => {
                if auto.is_some() {
                    let names: Vec<&str> = INJECTED.iter().map(|(n, _)| *n).collect();
                    return Err(syn::Error::new_spanned(
                        &pi.ident,
                        format!("unknown model builder parameter `{pname}`: parameters are injected by name ({}), plus at most one parameter whose type implements `AutoInit`", names.join(", ")),
                    ));
                }
                auto = Some((**ty).clone());
                params.push(quote!(#krate::registry::Inject::Keys));
                bindings.push(quote!(let __arg_keys = __ctx.resolve::<#ty>()?;));
                call_args.push(quote!(__arg_keys));
            }
        }
    }
    let (keys, prefix) = match &auto {
        Some(ty) => (quote!(<#ty as #krate::config::AutoInit>::KEYS), quote!(<#ty as #krate::config::AutoInit>::PREFIX)),
        None => (quote!(&[]), quote!(::core::option::Option::None)),
    };
    let extra = quote! {
        fn __nequip_call(__ctx: &mut #krate::registry::BuildContext<'_>) -> ::core::result::Result<(), #krate::registry::BuildError> {
            #(#bindings)*
            let __out = #fname(#(#call_args),*);
            #krate::registry::IntoBuildOutput::into_build_output(__out, __ctx)
        }
        static __NEQUIP_FACTORY: #krate::registry::ModelBuilderFactory = #krate::registry::ModelBuilderFactory {
            params: &[#(#params),*],
            dataset_required: #dataset_required,
            call: __nequip_call,
        };
    };
    Ok((keys, prefix, quote!(&__NEQUIP_FACTORY), extra))
}

/// Whether a type is written `Option<...>` (an optional injected parameter).
fn is_option(ty: &syn::Type) -> bool {
    matches!(ty, syn::Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Option"))
}
