//! `skiff shim …` (hidden): the built-in runtime's per-container supervisor and exec helper.
//! The runtime re-executes this binary (through `/proc/self/exe`) so that container creation
//! runs in a fresh single-threaded process, never inside skiff's tokio runtime; see
//! `skiff_runtime::linux::shim_main`. Not meant to be run by hand.

use std::ffi::OsString;

use clap::Args;

#[derive(Args, Debug)]
pub(crate) struct ShimArgs {
    /// `run <container dir>` or `exec <container dir> <request>`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<OsString>,
}

/// Runs the shim and exits with its code (an exec session's code is the program's).
pub(crate) fn run(args: ShimArgs) -> ! {
    std::process::exit(skiff_runtime::linux::shim_main(&args.args))
}
