//! `#[auto_init(prefix = "...")]`: key specs + `AutoInit` impl for a config struct.
//!
//! Field attribute `#[key(...)]`:
//! * `default = EXPR` — any serializable expression; `default` alone uses `Default::default()`.
//!   `Option<T>` fields without a default default to `null`; other fields without one are required.
//! * `name = "..."` — the key name when it is not a Rust identifier.
//! * `kind = nn_module` — for a nested builder field `x` that has a sibling `x_kwargs` field
//!   (nequip's `x` + `x_kwargs` convention; default kind `nn_module`).
//! * `plain = true` — on an `x_kwargs` field that is a plain dict, not a nested builder's
//!   arguments (e.g. the trainer's `optimizer_kwargs`); lifts the `x` + `x_kwargs` rule.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};
use syn::{Data, DeriveInput, Fields, Type};

use crate::attr;

const STRUCT_ARGS: &[&str] = &["prefix", "crate"];
const FIELD_ARGS: &[&str] = &["default", "name", "kind", "plain"];
pub const KINDS: &[(&str, &str)] = &[
    ("model_builder", "ModelBuilder"),
    ("dataset", "Dataset"),
    ("nn_module", "NnModule"),
    ("loss", "Loss"),
    ("metric", "Metric"),
    ("optimizer", "Optimizer"),
    ("lr_scheduler", "LrScheduler"),
    ("radial_function", "RadialFunction"),
];

/// Map a kind identifier (`nn_module`) to its `Kind` variant name, or a spanned error.
pub fn kind_variant(kind: &syn::Ident) -> syn::Result<syn::Ident> {
    let s = kind.to_string();
    KINDS
        .iter()
        .find(|(k, _)| *k == s)
        .map(|(_, v)| syn::Ident::new(v, kind.span()))
        .ok_or_else(|| {
            let names: Vec<&str> = KINDS.iter().map(|(k, _)| *k).collect();
            syn::Error::new(kind.span(), format!("unknown kind `{s}`; expected one of: {}", names.join(", ")))
        })
}

struct FieldInfo {
    ident: syn::Ident,
    key: String,
    ty: Type,
    doc: String,
    default: Option<TokenStream>,
    kind: Option<syn::Ident>,
    kind_span: Option<proc_macro2::Span>,
    plain: bool,
}

fn is_option(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none() && p.path.segments.last().is_some_and(|s| s.ident == "Option"))
}

pub fn expand(args: TokenStream, input: TokenStream) -> syn::Result<TokenStream> {
    let args = attr::parse_args(args)?;
    attr::check_names(&args, STRUCT_ARGS, "auto_init")?;
    let krate = attr::crate_path(&args)?;
    // Every error is collected and reported together (serde's `Ctxt` practice).
    let mut errors: Option<syn::Error> = None;
    let mut push = |e: syn::Error| match &mut errors {
        Some(all) => all.combine(e),
        None => errors = Some(e),
    };
    let prefix = match attr::find(&args, "prefix").map(attr::lit_str) {
        Some(Ok(s)) if s.value().is_empty() => {
            push(syn::Error::new(s.span(), "prefix must not be empty"));
            quote!(::core::option::Option::None)
        }
        Some(Ok(s)) => quote!(::core::option::Option::Some(#s)),
        Some(Err(e)) => {
            push(e);
            quote!(::core::option::Option::None)
        }
        None => quote!(::core::option::Option::None),
    };
    let mut item: DeriveInput = syn::parse2(input)?;
    let fields = match &mut item.data {
        Data::Struct(s) => match &mut s.fields {
            Fields::Named(n) => &mut n.named,
            other => return Err(syn::Error::new_spanned(other, "#[auto_init] needs a struct with named fields")),
        },
        _ => return Err(syn::Error::new_spanned(&item.ident, "#[auto_init] can only be used on a struct with named fields")),
    };

    let mut infos = Vec::new();
    for f in fields.iter_mut() {
        let ident = f.ident.clone().ok_or_else(|| syn::Error::new_spanned(&*f, "unnamed field"))?;
        let mut info = FieldInfo {
            key: ident.to_string().trim_start_matches("r#").to_string(),
            ident,
            ty: f.ty.clone(),
            doc: attr::doc_string(&f.attrs),
            default: None,
            kind: None,
            kind_span: None,
            plain: false,
        };
        let mut keep = Vec::new();
        for a in f.attrs.drain(..) {
            if !a.path().is_ident("key") {
                keep.push(a);
                continue;
            }
            let parsed = match &a.meta {
                syn::Meta::List(l) => attr::parse_args(l.tokens.clone()),
                syn::Meta::Path(_) => Ok(Vec::new()),
                syn::Meta::NameValue(nv) => Err(syn::Error::new_spanned(nv, "use #[key(default = ...)]")),
            };
            let list = match parsed.and_then(|l| attr::check_names(&l, FIELD_ARGS, "key").map(|_| l)) {
                Ok(l) => l,
                Err(e) => {
                    // `#[key(default)]` (no value) is allowed: handle it before reporting.
                    if let syn::Meta::List(l) = &a.meta {
                        if l.tokens.to_string().trim() == "default" {
                            let ty = &info.ty;
                            info.default = Some(quote!(<#ty as ::core::default::Default>::default()));
                            continue;
                        }
                    }
                    push(e);
                    continue;
                }
            };
            for arg in &list {
                match arg.name.to_string().as_str() {
                    "default" => info.default = Some(arg.value.to_token_stream()),
                    "name" => match attr::lit_str(arg) {
                        Ok(s) => info.key = s.value(),
                        Err(e) => push(e),
                    },
                    "plain" => match &arg.value {
                        syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Bool(b), .. }) => info.plain = b.value,
                        other => push(syn::Error::new_spanned(other, "`plain` takes `true` or `false`")),
                    },
                    "kind" => match attr::ident(arg).and_then(|k| kind_variant(&k).map(|v| (k, v))) {
                        Ok((k, v)) => {
                            info.kind_span = Some(k.span());
                            info.kind = Some(v);
                        }
                        Err(e) => push(e),
                    },
                    _ => {}
                }
            }
        }
        f.attrs = keep;
        if info.key != info.ident.to_string() {
            let k = &info.key;
            f.attrs.push(syn::parse_quote!(#[serde(rename = #k)]));
        }
        infos.push(info);
    }

    // nequip's strictness: `x_kwargs` needs a parameter `x` (auto_init.py raises KeyError).
    let names: Vec<String> = infos.iter().map(|i| i.key.clone()).collect();
    for i in &infos {
        if let (Some(base), false) = (i.key.strip_suffix("_kwargs"), i.plain) {
            if !names.iter().any(|n| n == base) {
                push(syn::Error::new(
                    i.ident.span(),
                    format!("found `{}` but no field `{base}` for the corresponding nested builder; add a field `{base}` or rename this one without `_kwargs`", i.key),
                ));
            }
        }
        if let (Some(span), false) = (i.kind_span, names.iter().any(|n| *n == format!("{}_kwargs", i.key))) {
            push(syn::Error::new(span, format!("`kind` marks a nested builder, which needs a sibling field `{}_kwargs`", i.key)));
        }
    }
    if let Some(e) = errors {
        return Err(e);
    }

    let specs = infos.iter().map(|i| {
        let key = &i.key;
        let ty = &i.ty;
        let ty_str = ty.to_token_stream().to_string().replace(' ', "");
        let doc = &i.doc;
        let default = match &i.default {
            Some(expr) => quote!(::core::option::Option::Some({
                fn __default() -> #krate::config::Value { #krate::config::yaml::to_value(&(#expr)) }
                __default as fn() -> #krate::config::Value
            })),
            None if is_option(ty) => quote!(::core::option::Option::Some({
                fn __default() -> #krate::config::Value { #krate::config::Value::Null }
                __default as fn() -> #krate::config::Value
            })),
            None => quote!(::core::option::Option::None),
        };
        let is_nested_pair = infos.iter().any(|j| j.key == format!("{key}_kwargs") && !j.plain);
        let nested = if is_nested_pair {
            let v = i.kind.clone().unwrap_or_else(|| syn::Ident::new("NnModule", i.ident.span()));
            quote!(::core::option::Option::Some(#krate::registry::Kind::#v))
        } else {
            quote!(::core::option::Option::None)
        };
        quote! {
            #krate::config::KeySpec { name: #key, ty: #ty_str, doc: #doc, default: #default, nested: #nested }
        }
    });

    let name = &item.ident;
    let (impl_g, ty_g, where_g) = item.generics.split_for_impl();
    let serde_path = quote!(#krate::__private::serde).to_string().replace(' ', "");
    Ok(quote! {
        #[derive(#krate::__private::serde::Deserialize)]
        #[serde(crate = #serde_path)]
        #item

        impl #impl_g #krate::config::AutoInit for #name #ty_g #where_g {
            const PREFIX: ::core::option::Option<&'static str> = #prefix;
            const KEYS: &'static [#krate::config::KeySpec] = &[#(#specs),*];
        }
    })
}
