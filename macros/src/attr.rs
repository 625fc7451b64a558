//! Attribute parsing shared by both macros: `key = value` lists with spanned errors.

use proc_macro2::TokenStream;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Attribute, Expr, ExprLit, Lit, LitStr, Meta, Path, Token};

/// One `name = value` argument of an attribute.
pub struct Arg {
    pub name: syn::Ident,
    pub value: Expr,
}

impl Parse for Arg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let name: syn::Ident = input.call(syn::ext::IdentExt::parse_any)?;
        input.parse::<Token![=]>()?;
        let value: Expr = input.parse()?;
        Ok(Arg { name, value })
    }
}

/// Parse the argument list of an attribute (`#[x(a = 1, b = "s")]`).
pub fn parse_args(tokens: TokenStream) -> syn::Result<Vec<Arg>> {
    let parser = Punctuated::<Arg, Token![,]>::parse_terminated;
    Ok(syn::parse::Parser::parse2(parser, tokens)?.into_iter().collect())
}

/// Reject an argument name that is not in `allowed`, and any repeated name.
pub fn check_names(args: &[Arg], allowed: &[&str], what: &str) -> syn::Result<()> {
    let mut errors: Option<syn::Error> = None;
    let mut push = |e: syn::Error| match &mut errors {
        Some(all) => all.combine(e),
        None => errors = Some(e),
    };
    for (i, a) in args.iter().enumerate() {
        let n = a.name.to_string();
        if !allowed.contains(&n.as_str()) {
            push(syn::Error::new(
                a.name.span(),
                format!("unknown {what} argument `{n}`; expected one of: {}", allowed.join(", ")),
            ));
        } else if args[..i].iter().any(|b| b.name == a.name) {
            push(syn::Error::new(a.name.span(), format!("duplicate {what} argument `{n}`")));
        }
    }
    errors.map_or(Ok(()), Err)
}

pub fn find<'a>(args: &'a [Arg], name: &str) -> Option<&'a Arg> {
    args.iter().find(|a| a.name == name)
}

/// Look through the invisible groups `macro_rules!` wraps around `$x:literal` / `$x:expr`.
fn ungroup(e: &Expr) -> &Expr {
    match e {
        Expr::Group(g) => ungroup(&g.expr),
        Expr::Paren(p) => ungroup(&p.expr),
        other => other,
    }
}

pub fn lit_str(arg: &Arg) -> syn::Result<LitStr> {
    match ungroup(&arg.value) {
        Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) => Ok(s.clone()),
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{}` takes a string literal, e.g. {} = \"...\"", arg.name, arg.name),
        )),
    }
}

pub fn ident(arg: &Arg) -> syn::Result<syn::Ident> {
    match ungroup(&arg.value) {
        Expr::Path(p) => p
            .path
            .get_ident()
            .cloned()
            .ok_or_else(|| syn::Error::new_spanned(p, format!("`{}` takes a bare identifier", arg.name))),
        other => Err(syn::Error::new_spanned(other, format!("`{}` takes a bare identifier", arg.name))),
    }
}

pub fn path(arg: &Arg) -> syn::Result<Path> {
    match ungroup(&arg.value) {
        Expr::Path(p) => Ok(p.path.clone()),
        other => Err(syn::Error::new_spanned(other, format!("`{}` takes a path, e.g. crate = ::nequip_core", arg.name))),
    }
}

/// `aliases = ["a", "b"]`
pub fn str_list(arg: &Arg) -> syn::Result<Vec<LitStr>> {
    let err = || syn::Error::new_spanned(&arg.value, format!("`{}` takes a list of string literals, e.g. [\"a\", \"b\"]", arg.name));
    match ungroup(&arg.value) {
        Expr::Array(a) => a
            .elems
            .iter()
            .map(|e| match ungroup(e) {
                Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) => Ok(s.clone()),
                _ => Err(err()),
            })
            .collect(),
        _ => Err(err()),
    }
}

/// The doc comment of an item (`///` lines joined, trimmed).
pub fn doc_string(attrs: &[Attribute]) -> String {
    let mut lines = Vec::new();
    for a in attrs {
        if let Meta::NameValue(nv) = &a.meta {
            if nv.path.is_ident("doc") {
                if let Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) = &nv.value {
                    lines.push(s.value().trim().to_string());
                }
            }
        }
    }
    lines.join("\n").trim().to_string()
}

/// The crate path used in generated code: `::nequip_core` unless `crate = path` is given.
pub fn crate_path(args: &[Arg]) -> syn::Result<TokenStream> {
    match find(args, "crate") {
        Some(a) => {
            let p = path(a)?;
            Ok(quote::quote!(#p))
        }
        None => Ok(quote::quote!(::nequip_core)),
    }
}
