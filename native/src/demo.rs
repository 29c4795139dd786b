//! `demo`: the seeds' doubler end to end on whichever backend was chosen, printing the
//! adapter, the answers, telemetry and (with `--metrics`) the Prometheus text.

use std::time::Duration;

use ringkernel_web::{LaunchOptions, Runtime, RuntimeOptions, Value};

use crate::backend::{runs_on_host, Backend};

pub async fn run(backend: Backend, count: i32, metrics: bool) -> anyhow::Result<()> {
    let runtime = Runtime::new(RuntimeOptions::default().with_backend(backend.choice())).await?;
    let adapter = runtime.adapter();
    println!("adapter: {} ({}, {}, driver {})", adapter.name, adapter.backend, adapter.device_type, adapter.driver);
    let processed_where = if runs_on_host(&adapter) { "by host handlers" } else { "on GPU" };

    runtime.launch("doubler", LaunchOptions::default()).await?;
    runtime.activate("doubler").await?;
    let inputs: Vec<i32> = (0..count.max(0)).map(|i| i * 10 + 1).collect();
    for &value in &inputs {
        runtime.send("doubler", &[("value", Value::from(value))], Some(Duration::from_millis(5000))).await?;
    }
    for &value in &inputs {
        let answer = runtime.receive("doubler", Some(Duration::from_millis(10_000))).await?;
        let result = answer
            .first()
            .and_then(|(_, v)| v.as_number())
            .ok_or_else(|| anyhow::anyhow!("the doubler answered {answer:?}, not one number"))?;
        println!("doubler({value}) = {result}");
    }
    if let Some(t) = runtime.telemetry("doubler")? {
        println!(
            "telemetry: sent {}, processed {processed_where} {}, received {}, ticks {}",
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
    runtime.terminate("doubler", Some(Duration::from_millis(5000))).await?;
    println!("doubler: {}", runtime.state("doubler")?);
    runtime.dispose().await?;
    Ok(())
}
