//! Misuse of `#[builder]` / `#[auto_init]` gives spanned compile errors (never a panic).
#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
