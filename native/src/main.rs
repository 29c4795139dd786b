//! `ringkernel-native`: run ring kernels on native wgpu (Vulkan, Metal, DX12, GL) or the CPU
//! backend.
//!
//! - `info`: every adapter wgpu can see, the limits that bound ring kernels, and the one the
//!   runtime picks ([`info`]).
//! - `demo`: the seeds' doubler end to end ([`demo`]).
//! - `bench`: the runtime against hand-written wgpu on one adapter ([`mod@bench`]).

mod backend;
mod bench;
mod demo;
mod info;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::backend::Backend;

#[derive(Parser)]
#[command(name = "ringkernel-native", version, about = "GPU-resident actors on native wgpu")]
struct Cli {
    /// Which graphics API to run on; `cpu` runs kernels on their host handlers.
    #[arg(long, value_enum, global = true, default_value_t = Backend::Auto)]
    backend: Backend,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Launch the doubler, send messages, print the answers.
    Demo {
        /// How many messages to send (1, 11, 21, ... doubled), any number: they go out at most
        /// 1024 ahead of their answers.
        #[arg(long, default_value_t = 5)]
        count: u32,
        /// Also print every counter in Prometheus' text format.
        #[arg(long)]
        metrics: bool,
    },
    /// List the adapters wgpu sees, their limits, and the one the runtime picks (exit status 1
    /// when the runtime finds none).
    Info {
        /// One JSON document on stdout instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Measure the runtime against hand-written wgpu on one adapter.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = pollster::block_on(async {
        match cli.command {
            Command::Demo { count, metrics } => demo::run(cli.backend, count, metrics).await,
            Command::Info { json } => info::run(cli.backend, json).await,
            Command::Bench(args) => bench::run(cli.backend, args).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match e.downcast_ref::<ringkernel_web::Error>() {
                Some(runtime_error) => eprintln!("error ({:?}): {e:#}", runtime_error.kind()),
                None => eprintln!("error: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}
