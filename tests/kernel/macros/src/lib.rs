//! `#[kernel_test]`: the attribute of the tests in `tests/kernel/` (one
//! binary with its own `main`, aya's `integration-test` pattern). It keeps
//! the function as written and registers it with the binary's runner
//! (`inventory`), which opens the kernel gate once for all of them.
//!
//! `#[kernel_test(exclusive)]`: the test runs alone, no other kernel test
//! meanwhile, for a test that uses what is machine-wide (the lab's fixed
//! scenario names and ports, dozens of programs attached at once).
//!
//! No `syn`: the only thing read from the item is the name after `fn`.
use proc_macro::{Delimiter, TokenStream, TokenTree};

#[proc_macro_attribute]
pub fn kernel_test(attr: TokenStream, item: TokenStream) -> TokenStream {
    let exclusive = match attr.to_string().as_str() {
        "" => false,
        "exclusive" => true,
        _ => return error("#[kernel_test] takes no argument but `exclusive`"),
    };
    let mut tokens = item.clone().into_iter().peekable();
    let mut name = None;
    while let Some(t) = tokens.next() {
        if let TokenTree::Ident(i) = &t {
            if i.to_string() == "fn" {
                if let Some(TokenTree::Ident(n)) = tokens.next() {
                    name = Some(n.to_string());
                }
                break;
            }
        }
    }
    let Some(name) = name else {
        return error("#[kernel_test] goes on a function");
    };
    // A test takes nothing and returns nothing, like #[test]; the runner
    // stores it as `fn()`, so anything else fails to compile there.
    let has_body = item
        .clone()
        .into_iter()
        .any(|t| matches!(&t, TokenTree::Group(g) if g.delimiter() == Delimiter::Brace));
    if !has_body {
        return error("#[kernel_test] goes on a function with a body");
    }
    let register: TokenStream = format!(
        "::inventory::submit! {{ crate::KernelTest {{ \
             path: ::core::module_path!(), name: \"{name}\", run: {name}, \
             exclusive: {exclusive} }} }}"
    )
    .parse()
    .expect("registration tokens");
    let mut out = item;
    out.extend(register);
    out
}

fn error(msg: &str) -> TokenStream {
    format!("::core::compile_error!({msg:?});")
        .parse()
        .expect("compile_error tokens")
}
