//! Link `skiff` as a non-PIE executable. Every per-container supervisor is this binary
//! re-executed; in a PIE the dynamic loader rewrites all of `.data.rel.ro` (about 1 MiB of
//! pointers) at start, which makes those pages private to each supervisor. Linked at a fixed
//! address they need no relocation and stay shared, clean file pages. (Go binaries, k3s
//! included, are non-PIE on linux/amd64 too.) See docs/decisions/0006-non-pie-binary.md.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bin=skiff=-no-pie");
    }
}
