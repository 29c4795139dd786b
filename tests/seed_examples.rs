//! The seeds' usage examples (PyDotCompute's complete lifecycle, multiple kernels, pause and
//! resume, and `managed_kernel`) natively, each in both styles: by id with named values
//! (PyDotCompute's) and through typed kernel handles (RingKernel's). On lavapipe.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::time::Duration;

use bytemuck::{Pod, Zeroable};
use ringkernel_web::{
    BackendChoice, KernelDefinition, KernelState, LaunchOptions, RingMessage, Runtime, RuntimeOptions, Value,
};

const WAIT: Option<Duration> = Some(Duration::from_secs(5));

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable, RingMessage)]
struct Sample {
    value: f32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable, RingMessage)]
struct Job {
    id: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable, RingMessage)]
struct Done {
    id: u32,
}

fn runtime() -> Runtime {
    common::runtime_on(BackendChoice::Auto)
}

fn sample_kernel(id: &str, expression: &str) -> KernelDefinition {
    let wgsl = format!("fn handle(s: Sample) -> Sample {{ return Sample({expression}); }}");
    KernelDefinition::new(id, Sample::layout(), Sample::layout(), &wgsl)
}

fn worker(id: &str) -> KernelDefinition {
    KernelDefinition::new(id, Job::layout(), Done::layout(), "fn handle(job: Job) -> Done { return Done(job.id); }")
}

#[test]
fn complete_lifecycle_by_id() {
    let rt = Runtime::clone(&runtime());
    pollster::block_on(async {
        rt.launch("doubler", LaunchOptions::default()).await.unwrap(); // Phase 1: launch
        rt.activate("doubler").await.unwrap(); // Phase 2: activate
        rt.send("doubler", &[("value", Value::from(21))], None).await.unwrap();
        let response = rt.receive("doubler", WAIT).await.unwrap();
        assert_eq!(response, [("result".to_owned(), Value::I32(42))]);
        assert_eq!(rt.telemetry("doubler").unwrap().unwrap().messages_processed, 1);
        rt.terminate("doubler", WAIT).await.unwrap(); // Phase 3: terminate
        assert_eq!(rt.state("doubler").unwrap(), KernelState::Terminated);
    });
}

#[test]
fn complete_lifecycle_with_a_handle() {
    let rt = runtime();
    pollster::block_on(async {
        let doubler = rt.launch("doubler", LaunchOptions::default()).await.unwrap().typed::<i32, i32>().unwrap();
        doubler.activate().await.unwrap();
        doubler.send(21).await.unwrap();
        assert_eq!(doubler.receive_timeout(Duration::from_secs(5)).await.unwrap(), 42);
        assert_eq!(doubler.metrics().unwrap().messages_processed, 1);
        doubler.terminate().await.unwrap();
        assert!(doubler.is_terminated());
    });
}

#[test]
fn multiple_kernels_by_id() {
    let rt = runtime();
    pollster::block_on(async {
        for (id, expression) in [("processor1", "s.value * s.value"), ("processor2", "s.value * s.value")] {
            rt.launch_definition(sample_kernel(id, expression), LaunchOptions::default()).await.unwrap();
        }
        rt.launch_definition(sample_kernel("aggregator", "sqrt(s.value)"), LaunchOptions::default()).await.unwrap();
        for id in rt.kernel_ids() {
            rt.activate(&id).await.unwrap();
        }
        assert_eq!(rt.active_kernels(), ["aggregator", "processor1", "processor2"]);
        let square = |id: &'static str, v: f32| {
            let rt = rt.clone();
            async move { rt.call(id, &[("value", Value::from(v))], WAIT).await.unwrap()[0].1.as_number().unwrap() }
        };
        let (a, b) = futures_util::join!(square("processor1", 3.0), square("processor2", 4.0));
        let hypotenuse = rt.call("aggregator", &[("value", Value::from((a + b) as f32))], WAIT).await.unwrap();
        assert_eq!(hypotenuse[0].1, Value::F32(5.0));
        assert_eq!(rt.summary().total_messages, 3);
        rt.terminate_all(WAIT).await.unwrap();
    });
}

#[test]
fn multiple_kernels_with_handles() {
    let rt = runtime();
    pollster::block_on(async {
        let launch = |id: &'static str, expression: &'static str| {
            let rt = rt.clone();
            async move {
                let options = LaunchOptions::default().with_auto_activate();
                rt.launch_definition(sample_kernel(id, expression), options)
                    .await
                    .unwrap()
                    .typed::<Sample, Sample>()
                    .unwrap()
            }
        };
        let (p1, p2, aggregator) = futures_util::join!(
            launch("p1", "s.value * s.value"),
            launch("p2", "s.value * s.value"),
            launch("agg", "sqrt(s.value)")
        );
        let timeout = Duration::from_secs(5);
        let (a, b) =
            futures_util::join!(p1.call(Sample { value: 3.0 }, timeout), p2.call(Sample { value: 4.0 }, timeout));
        let sum = a.unwrap().value + b.unwrap().value;
        assert_eq!(aggregator.call(Sample { value: sum }, timeout).await.unwrap(), Sample { value: 5.0 });
        assert_eq!(rt.metrics().total_launched, 3);
        for handle in [p1, p2, aggregator] {
            handle.terminate().await.unwrap();
        }
    });
}

#[test]
fn pause_and_resume_by_id() {
    let rt = runtime();
    pollster::block_on(async {
        rt.launch_definition(worker("worker"), LaunchOptions::default()).await.unwrap();
        rt.activate("worker").await.unwrap();
        for id in 1..=3u32 {
            rt.send("worker", &[("id", Value::from(id))], None).await.unwrap();
        }
        rt.deactivate("worker").await.unwrap(); // pause for maintenance
        assert_eq!(rt.state("worker").unwrap(), KernelState::Deactivated);
        for id in 4..=6u32 {
            rt.send("worker", &[("id", Value::from(id))], None).await.unwrap(); // queued, not processed
        }
        rt.reactivate("worker").await.unwrap();
        let mut done = Vec::new();
        for _ in 0..6 {
            done.push(rt.receive("worker", WAIT).await.unwrap()[0].1.clone());
        }
        assert_eq!(done, (1..=6).map(Value::U32).collect::<Vec<_>>(), "in order");
    });
}

#[test]
fn pause_and_resume_with_a_handle() {
    let rt = runtime();
    pollster::block_on(async {
        let options = LaunchOptions::default().with_auto_activate();
        let worker = rt.launch_definition(worker("worker"), options).await.unwrap().typed::<Job, Done>().unwrap();
        worker.send_batch(&[Job { id: 1 }, Job { id: 2 }, Job { id: 3 }]).await.unwrap();
        worker.suspend().await.unwrap();
        assert_eq!(worker.status().unwrap().state, KernelState::Deactivated);
        worker.send_batch(&[Job { id: 4 }, Job { id: 5 }, Job { id: 6 }]).await.unwrap();
        worker.resume().await.unwrap();
        let mut done = Vec::new();
        while done.len() < 6 {
            done.extend(worker.receive_batch(6 - done.len()).await.unwrap().into_iter().map(|d| d.id));
        }
        assert_eq!(done, [1, 2, 3, 4, 5, 6]);
    });
}

#[test]
fn managed_kernel_by_id_and_with_a_handle() {
    let rt = runtime();
    pollster::block_on(async {
        let answer = rt
            .managed_kernel("doubler", LaunchOptions::default(), |id| {
                let rt = rt.clone();
                async move { rt.call_pod::<i32, i32>(&id, &21, WAIT).await }
            })
            .await
            .unwrap();
        assert_eq!(answer, 42);
        assert_eq!(rt.state("doubler").unwrap(), KernelState::Terminated);
        rt.remove("doubler").unwrap();
        // The handle style: the scope is the handle's life, and `terminate` ends it.
        let doubler = rt
            .launch("doubler", LaunchOptions::default().with_auto_activate())
            .await
            .unwrap()
            .typed::<i32, i32>()
            .unwrap();
        assert_eq!(doubler.call(21, Duration::from_secs(5)).await.unwrap(), 42);
        doubler.terminate().await.unwrap();
        assert_eq!(rt.state("doubler").unwrap(), KernelState::Terminated);
    });
}

#[test]
fn options_deserialize_with_the_javascript_names() {
    // What the JavaScript layer hands the core: camelCase keys, unknown ones refused.
    let options: LaunchOptions =
        serde_json::from_str(r#"{"queueSize": 8, "autoActivate": true, "workgroupSize": 32}"#).unwrap();
    assert_eq!(options, LaunchOptions::default().with_queue_capacity(8).with_auto_activate().with_block_size(32));
    let runtime: RuntimeOptions = serde_json::from_str(r#"{"maxMessagesPerTick": 64, "backend": "cpu"}"#).unwrap();
    assert_eq!(runtime, RuntimeOptions::default().with_max_messages_per_tick(64).with_backend(BackendChoice::Cpu));
    let typo = serde_json::from_str::<LaunchOptions>(r#"{"queueSzie": 8}"#).unwrap_err();
    assert!(typo.to_string().contains("unknown field `queueSzie`"), "{typo}");
}
