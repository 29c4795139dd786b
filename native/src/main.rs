//! `ringkernel-native`: run ring kernels on native wgpu (Vulkan, Metal, DX12, GL).
//!
//! - `demo`: the seeds' doubler end to end, printing the adapter, the answers, telemetry and
//!   (with `--metrics`) the Prometheus text.
//! - `info`: the adapter the runtime would use.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use ringkernel_web::{BackendChoice, LaunchOptions, Runtime, RuntimeOptions, Value};

#[derive(Parser)]
#[command(name = "ringkernel-native", version, about = "GPU-resident actors on native wgpu")]
struct Cli {
    /// Which graphics API to run on.
    #[arg(long, value_enum, global = true, default_value_t = Backend::Auto)]
    backend: Backend,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Backend {
    Auto,
    Vulkan,
    Gl,
    Metal,
    Dx12,
}

#[derive(Subcommand)]
enum Command {
    /// Launch the doubler, send messages, print the answers.
    Demo {
        /// How many messages to send (0, 1, 2, ... doubled).
        #[arg(long, default_value_t = 5)]
        count: i32,
        /// Also print every counter in Prometheus' text format.
        #[arg(long)]
        metrics: bool,
    },
    /// Print the adapter the runtime picks.
    Info,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let backend = match cli.backend {
        Backend::Auto => BackendChoice::Auto,
        Backend::Vulkan => BackendChoice::Vulkan,
        Backend::Gl => BackendChoice::Gl,
        Backend::Metal => BackendChoice::Metal,
        Backend::Dx12 => BackendChoice::Dx12,
    };
    match pollster::block_on(run(cli.command, backend)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error ({}): {e}", e.name());
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, backend: BackendChoice) -> ringkernel_web::Result<()> {
    let runtime = Runtime::new(RuntimeOptions { backend, ..Default::default() }).await?;
    let adapter = runtime.adapter();
    println!("adapter: {} ({}, {}, driver {})", adapter.name, adapter.backend, adapter.device_type, adapter.driver);
    match command {
        Command::Info => Ok(()),
        Command::Demo { count, metrics } => {
            runtime.launch("doubler", LaunchOptions::default()).await?;
            runtime.activate("doubler").await?;
            for value in 0..count.max(0) {
                runtime.send("doubler", &[("value", Value::from(value * 10 + 1))], Some(5000.0)).await?;
            }
            for value in 0..count.max(0) {
                let answer = runtime.receive("doubler", Some(10_000.0)).await?;
                let result = answer[0].1.as_number().expect("the doubler answers one i32");
                println!("doubler({}) = {}", value * 10 + 1, result);
            }
            if let Some(t) = runtime.telemetry("doubler")? {
                println!(
                    "telemetry: sent {}, processed on GPU {}, received {}, ticks {}",
                    t.messages_sent, t.messages_processed, t.messages_received, t.dispatches
                );
                let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.3}"));
                let l = &t.latency;
                println!(
                    "latency ms (send to answer on host): min {} p50 {} p99 {} max {}",
                    ms(l.min_ms),
                    ms(l.p50_ms),
                    ms(l.p99_ms),
                    ms(l.max_ms)
                );
            }
            if metrics {
                print!("{}", runtime.metrics_text());
            }
            runtime.terminate("doubler", Some(5000.0)).await?;
            println!("doubler: {}", runtime.state("doubler")?);
            Ok(())
        }
    }
}
