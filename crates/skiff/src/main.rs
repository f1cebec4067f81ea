//! `skiff`: a Kubernetes-compatible cluster in one binary. Each subcommand lives in its own
//! module; `main` only parses the command line and runs one.

mod agent;
mod datadir;
mod image;
mod join;
mod kubeconfig;
mod reset;
mod server;
mod shim;
mod sim;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc: the server allocates and frees small objects from
/// many threads (JSON values, watch events), where glibc's per-thread arenas fragment and
/// its free lists cost (see docs/decisions/0013-allocator.md). Its arenas are committed as
/// they are used (`MI_DEFAULT_ARENA_EAGER_COMMIT=0` in `.cargo/config.toml`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "skiff", version, about = "A Kubernetes-compatible cluster in one binary")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a cluster: API server, store, controllers, scheduler and a node agent.
    Server(Box<server::ServerArgs>),
    /// Join a cluster as a node: skiff agent --server https://HOST:6443 --token TOKEN.
    Agent(Box<agent::AgentArgs>),
    /// Remove everything skiff created on this host for a data dir.
    Reset(reset::ResetArgs),
    /// Manage the node's images: import, pull, ls, inspect, rm, prune, export, tag.
    Image(image::ImageArgs),
    /// Simulated nodes against an API server (capacity planning, scale tests).
    Sim(sim::SimArgs),
    /// The container runtime's per-container supervisor (internal).
    #[command(hide = true)]
    Shim(shim::ShimArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Server(args) => server::run(*args),
        Command::Agent(args) => agent::run(*args),
        Command::Reset(args) => reset::run(args),
        Command::Image(args) => image::run(args),
        Command::Shim(args) => shim::run(args),
        Command::Sim(args) => sim::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skiff: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
