//! `demo`: the seeds' doubler end to end on whichever backend was chosen, printing the
//! adapter, the answers, telemetry and (with `--metrics`) the Prometheus text.

use std::time::Duration;

use ringkernel_web::{LaunchOptions, Runtime, RuntimeOptions, Value};

use crate::backend::{runs_on_host, Backend};

/// Most messages sent ahead of their answers: well within the default queues (4096).
const IN_FLIGHT: usize = 1024;

pub async fn run(backend: Backend, count: u32, metrics: bool) -> anyhow::Result<()> {
    let runtime = Runtime::new(RuntimeOptions::default().with_backend(backend.choice())).await?;
    let adapter = runtime.adapter();
    println!("adapter: {}", crate::backend::adapter_line(&adapter));
    let processed_where = if runs_on_host(&adapter) { "by host handlers" } else { "on GPU" };

    runtime.launch("doubler", LaunchOptions::default()).await?;
    runtime.activate("doubler").await?;
    // Sends run at most a window ahead of the receives, so any count fits the bounded queues
    // (the kernel holds its input while its output queue is full of answers nobody takes).
    let inputs: Vec<i64> = (0..i64::from(count)).map(|i| i * 10 + 1).collect();
    let mut answered = 0;
    for (sent, &value) in inputs.iter().enumerate() {
        if sent - answered == IN_FLIGHT {
            print_answer(&runtime, inputs[answered]).await?;
            answered += 1;
        }
        runtime.send("doubler", &[("value", Value::from(value as f64))], Some(Duration::from_millis(5000))).await?;
    }
    for &value in &inputs[answered..] {
        print_answer(&runtime, value).await?;
    }
    if let Some(t) = runtime.telemetry("doubler")? {
        println!(
            "telemetry: sent {}, processed {processed_where} {}, received {}, dispatches {}",
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

/// Receives the doubler's next answer and prints it beside the `value` it answers.
async fn print_answer(runtime: &Runtime, value: i64) -> anyhow::Result<()> {
    let answer = runtime.receive("doubler", Some(Duration::from_millis(10_000))).await?;
    let result = answer
        .first()
        .and_then(|(_, v)| v.as_number())
        .ok_or_else(|| anyhow::anyhow!("the doubler answered {answer:?}, not one number"))?;
    println!("doubler({value}) = {result}");
    Ok(())
}
